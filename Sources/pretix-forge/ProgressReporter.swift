import FoundationEssentials
import Synchronization
import Glibc
import PretixForge

/// One status line per variant. On a terminal the lines are redrawn in place; in CI (or when
/// output is piped) each change is a plain line of its own, which logs keep readable.
final class ProgressReporter: @unchecked Sendable {
    private let labels: [String]
    private var states: [String]
    private let lock = Mutex(())
    private let interactive: Bool
    private var drawn = false

    init(labels: [String], environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.labels = labels
        self.states = Array(repeating: "waiting", count: labels.count)
        self.interactive = isatty(STDERR_FILENO) == 1 && environment["CI"] == nil && labels.count > 1
    }

    func update(_ index: Int, _ progress: BatchBuilder.Progress) {
        let state: String
        switch progress {
        case .started: state = "building…"
        case .finished(let distribution): state = "built \(distribution.wheelName)"
        case .failed: state = "FAILED (details below)"
        }
        lock.withLock { _ in
            states[index] = state
            if interactive {
                redraw()
            } else if labels.count > 1 {
                write("[\(index + 1)/\(labels.count)] \(labels[index]): \(state)\n")
            }
        }
    }

    private func redraw() {
        var text = drawn ? "\u{1B}[\(labels.count)A" : ""
        for (label, state) in zip(labels, states) {
            text += "\u{1B}[2K\(label): \(state)\n"
        }
        drawn = true
        write(text)
    }

    private func write(_ text: String) {
        StandardStream.error.write(text)
    }
}
