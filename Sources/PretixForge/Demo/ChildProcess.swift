import CSupport
import FoundationEssentials
import Glibc

/// A program pretix-forge started in a process group of its own, armed to die with pretix-forge
/// (see `forge_spawn`). Signals go to the whole group, so its own children are reached too.
public final class ChildProcess {
    public let pid: pid_t
    public private(set) var exitStatus: Int32?

    /// Starts `executable` (an absolute path). `output`/`errors` are descriptors to write to
    /// (nil: inherit ours); the caller keeps and closes its own copies. Call from the main thread.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String], directory: String? = nil,
        output: Int32? = nil, errors: Int32? = nil, deathSignal: Int32 = SIGKILL
    ) throws(ForgeError) {
        let argv = [executable] + arguments
        let envp = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let pid = withCStrings(argv) { argvPointer in
            withCStrings(envp) { envpPointer in
                if let directory {
                    return directory.withCString {
                        forge_spawn(executable, argvPointer, envpPointer, $0, output ?? -1, errors ?? -1, 1, deathSignal)
                    }
                }
                return forge_spawn(executable, argvPointer, envpPointer, nil, output ?? -1, errors ?? -1, 1, deathSignal)
            }
        }
        guard pid > 0 else {
            throw ForgeError("cannot start it: \(String(cString: strerror(errno)))", at: SourceLocation(file: executable))
        }
        self.pid = pid
    }

    /// The exit status once the process has ended (128 + n for a signal), nil while it runs.
    @discardableResult
    public func poll() -> Int32? {
        if exitStatus != nil { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            exitStatus = Self.decode(status)
        } else if result < 0, errno == ECHILD {
            exitStatus = 255  // reaped elsewhere; it is gone either way
        }
        return exitStatus
    }

    /// Blocks until the process has ended and returns its exit status (128 + n for a signal).
    public func waitForExit() -> Int32 {
        while exitStatus == nil {
            var status: Int32 = 0
            let result = waitpid(pid, &status, 0)
            if result == pid {
                exitStatus = Self.decode(status)
            } else if result < 0, errno != EINTR {
                exitStatus = 255  // reaped elsewhere; it is gone either way
            }
        }
        return exitStatus!
    }

    /// Sends `signal` to every process in the group.
    public func signalGroup(_ signal: Int32) {
        kill(-pid, signal)
    }

    /// Whether any process of the group still exists (a zombie counts until it is reaped).
    public var groupIsAlive: Bool {
        kill(-pid, 0) == 0 || errno == EPERM
    }

    static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
