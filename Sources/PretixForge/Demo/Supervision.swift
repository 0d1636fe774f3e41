import CSupport
import FoundationEssentials
import Glibc

/// SIGINT, SIGTERM and SIGHUP as bytes on a pipe, so one single-threaded loop can wait for a
/// signal, a child's output and a child's exit alike (poll), with no signal-handler logic.
public final class SignalWatcher {
    public static let stopSignals: [Int32] = [SIGINT, SIGTERM, SIGHUP]
    private let fd: Int32

    public init(_ signals: [Int32] = SignalWatcher.stopSignals) throws(ForgeError) {
        let fd = signals.withUnsafeBufferPointer { forge_signal_pipe($0.baseAddress, Int32($0.count)) }
        guard fd >= 0 else {
            throw ForgeError("cannot watch for signals: \(String(cString: strerror(errno)))", at: SourceLocation(file: "pretix-forge"))
        }
        self.fd = fd
    }

    /// The signals received within `timeout` seconds (empty if none), waiting also for `other`
    /// to become readable when given.
    public func wait(timeout: Double, alsoReadable other: Int32? = nil) -> (signals: [Int32], otherReadable: Bool) {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let other { fds.append(pollfd(fd: other, events: Int16(POLLIN), revents: 0)) }
        let ready = Glibc.poll(&fds, nfds_t(fds.count), Int32(timeout * 1000))
        guard ready > 0 else { return ([], false) }
        var received: [Int32] = []
        if fds[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 16)
            while true {
                let count = read(fd, &buffer, buffer.count)
                guard count > 0 else { break }
                received += buffer[..<count].map(Int32.init)
            }
        }
        return (received, fds.count > 1 && fds[1].revents != 0)
    }
}

/// Everything pretix-forge started, however deep, ends with it: orphaned descendants are
/// re-parented to us (child subreaper) and stopped at the end.
public enum Descendants {
    public static func adoptOrphans() {
        _ = forge_become_subreaper()
    }

    /// SIGKILLs and reaps every remaining child of this process (orphans adopted included)
    /// until none is left or `timeout` seconds passed. Returns whether none is left.
    @discardableResult
    public static func stopAll(timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            reapExited()
            let children = childrenOfThisProcess()
            if children.isEmpty { return true }
            if Date() > deadline { return false }
            for child in children { kill(child, SIGKILL) }
            usleep(20_000)
        }
    }

    static func reapExited() {
        var status: Int32 = 0
        while waitpid(-1, &status, WNOHANG) > 0 {}
    }

    /// Children as the kernel lists them in /proc (`stat` field 4 is the parent pid).
    static func childrenOfThisProcess() -> [pid_t] {
        let me = getpid()
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { name -> pid_t? in
            guard let pid = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let end = stat.lastIndex(of: ")") else { return nil }
            // The command name in parentheses may itself hold spaces and parentheses.
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            guard fields.count > 2, pid_t(fields[1]) == me else { return nil }
            return pid
        }
    }
}

/// Whether a TCP port on 127.0.0.1 is free, checked the way the server will bind it.
public enum LoopbackPort {
    public static func ensureFree(_ port: Int) throws(ForgeError) {
        let location = SourceLocation(file: "command line")
        guard (1...65535).contains(port) else {
            throw ForgeError("\(port) is not a TCP port", at: location, keyPath: "--port", fix: "pass a port from 1024 to 65535")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // As the server sets it: a previous run's connections in TIME_WAIT are no clash.
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result != 0 else { return }
        switch errno {
        case EADDRINUSE:
            throw ForgeError("port \(port) on 127.0.0.1 is in use", at: location, keyPath: "--port",
                             fix: "stop the program listening on port \(port), or pass --port with a free port")
        case EACCES:
            throw ForgeError("port \(port) needs root privileges", at: location, keyPath: "--port", fix: "pass a port from 1024 to 65535")
        default:
            throw ForgeError("cannot listen on 127.0.0.1:\(port): \(String(cString: strerror(errno)))", at: location, keyPath: "--port")
        }
    }
}
