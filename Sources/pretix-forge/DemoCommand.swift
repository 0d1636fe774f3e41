import ArgumentParser
import FoundationEssentials
import Glibc
import PretixForge

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a throwaway pretix shop with the variant and a local NodeRails simulator.",
        discussion: """
            Builds the variant's sdist, installs it into a private folder next to a pretix (a virtualenv under \
            $XDG_CACHE_HOME/pretix-forge or ~/.cache/pretix-forge, created with pip on first use; or --python), and \
            creates a shop in a throwaway sqlite database: an organiser with a backend login, a live event in the \
            config's currency with two ticket types, and the plugin enabled against the NodeRails simulator (API, \
            hosted checkout and signed webhooks). Everything listens on 127.0.0.1 only. Prints the shop's URL and \
            the backend login and serves until Ctrl-C; then every process is stopped and the data deleted. \
            With --screenshots DIR it takes pictures instead (headless Chromium buys two tickets in each language \
            of the config) and exits.
            """
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var overlay: TemplatesOption

    @Option(help: "The shop's port on 127.0.0.1 (the simulator takes two free ports of its own).")
    var port: Int = 8000

    @Option(help: ArgumentHelp("A Python that already has pretix, instead of pretix-forge's cached environment.", valueName: "path"))
    var python: String?

    @Option(help: ArgumentHelp("Take screenshots of the payment step, the confirm page before and after paying and the paid order, in each language, plus index.html; then exit. Needs Chromium and chromedriver.", valueName: "dir"))
    var screenshots: String?

    func run() throws {
        let demoOptions = DemoOptions(
            configPath: options.config, templates: try Pipeline.templates(overlay.templates), port: port, python: python,
            screenshots: screenshots, environment: ProcessInfo.processInfo.environment)
        let status: Int32
        do {
            status = try DemoRunner.run(demoOptions, log: StderrLog())
        } catch is DemoInterrupted {
            StandardStream.error.write("pretix-forge demo: interrupted; nothing was left running\n")
            status = 130
        }
        // Exit directly: the root command turns every error it catches into exit status 1.
        if status != 0 { Glibc.exit(status) }
    }
}

/// Status lines on stderr. On a terminal, transient ones (pip's progress) are redrawn in place;
/// elsewhere (CI logs) they are plain lines, at most one every few seconds.
final class StderrLog: DemoLog {
    private let interactive = isatty(STDERR_FILENO) == 1
    private var lastTransient = Date.distantPast

    func note(_ text: String, transient: Bool) {
        let line = "pretix-forge demo: \(text)"
        if interactive {
            write("\r\u{1B}[2K" + line + (transient ? "" : "\n"))
        } else if !transient || Date().timeIntervalSince(lastTransient) >= 5 {
            if transient { lastTransient = Date() }
            write(line + "\n")
        }
    }

    private func write(_ text: String) {
        StandardStream.error.write(text)
    }
}
