import FoundationEssentials
import Glibc

/// An interpreter that can run the demo: it imports pretix (and selenium, for screenshots).
public struct PretixInterpreter: Sendable {
    public var python: String
    public var pretixVersion: String
    public var hasSelenium: Bool
}

/// Ctrl-C (or SIGTERM/SIGHUP) arrived while the demo was being prepared; what was started is stopped.
public struct DemoInterrupted: Error {}

/// The pretix the demo runs in: an interpreter named with `--python`, or a virtualenv under the
/// user's cache folder, created with pip on first use from the embedded `Demo/requirements.txt`
/// (the one place the pretix version is pinned) and reused afterwards.
public enum PretixEnvironment {
    public static let requirementsResource = "Demo/requirements.txt"

    public static var requirements: String { EmbeddedFiles.text(requirementsResource) }

    /// The pinned pretix version, e.g. 2026.8.0.
    public static var pinnedPretixVersion: String {
        for line in requirements.split(separator: "\n") where line.hasPrefix("pretix==") {
            return String(line.dropFirst("pretix==".count)).trimming(.whitespaces)
        }
        preconditionFailure("\(requirementsResource) pins no pretix version")
    }

    /// `$XDG_CACHE_HOME/pretix-forge`, else `~/.cache/pretix-forge`.
    public static func cacheFolder(environment: [String: String]) throws(ForgeError) -> URL {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("pretix-forge")
        }
        guard let home = environment["HOME"], home.hasPrefix("/") else {
            throw ForgeError("neither XDG_CACHE_HOME nor HOME is an absolute path, so there is no cache folder for the pretix environment",
                             at: SourceLocation(file: "environment"), keyPath: "XDG_CACHE_HOME",
                             fix: "set XDG_CACHE_HOME (or HOME), or pass --python with an interpreter that has pretix")
        }
        return URL(fileURLWithPath: home).appendingPathComponent(".cache/pretix-forge")
    }

    // MARK: --python

    /// Checks that `path` runs and imports pretix (and selenium when `needsSelenium`).
    public static func probe(_ path: String, needsSelenium: Bool, signals: SignalWatcher, environment: [String: String]) throws -> PretixInterpreter {
        let python = URL(fileURLWithPath: path).path  // absolute: the demo runs in another folder
        let location = SourceLocation(file: "command line")
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ForgeError("\(path) is not an executable file", at: location, keyPath: "--python",
                             fix: "pass the python of an environment with pretix, e.g. <that environment>/bin/python, or leave --python out to use pretix-forge's own")
        }
        let script = """
            import importlib.util, sys
            try:
                import pretix
            except Exception as exc:
                print('error', '%s: %s' % (type(exc).__name__, exc)); sys.exit(0)
            print('pretix', pretix.__version__)
            print('selenium', 'yes' if importlib.util.find_spec('selenium') else 'no')
            """
        let run = try CapturedRun(python, ["-c", script], environment: environment, signals: signals, timeout: 120)
        let lines = run.lines
        if let error = lines.first(where: { $0.hasPrefix("error ") }) {
            throw ForgeError("\(path) cannot import pretix (\(error.dropFirst(6)))", at: location, keyPath: "--python",
                             fix: "pass the python of an environment with pretix (pip install pretix==\(pinnedPretixVersion)), or leave --python out to use pretix-forge's own")
        }
        guard run.status == 0, let version = lines.first(where: { $0.hasPrefix("pretix ") })?.dropFirst(7) else {
            throw ForgeError("\(path) did not run (exit \(run.status)): \(lines.suffix(5).joined(separator: " / "))", at: location, keyPath: "--python",
                             fix: "pass the python of an environment with pretix, or leave --python out to use pretix-forge's own")
        }
        let interpreter = PretixInterpreter(python: python, pretixVersion: String(version), hasSelenium: lines.contains("selenium yes"))
        if needsSelenium, !interpreter.hasSelenium {
            throw ForgeError("\(path) has pretix but not selenium, which --screenshots drives Chromium with", at: location, keyPath: "--python",
                             fix: "\(path) -m pip install selenium (the demo's environment pins \(pin("selenium") ?? "selenium")), or leave --python out")
        }
        return interpreter
    }

    // MARK: the cached environment

    /// The cached environment, created first if needed. `report` receives progress lines.
    public static func cached(environment: [String: String], signals: SignalWatcher, report: (String, Bool) -> Void) throws -> PretixInterpreter {
        let folder = try cacheFolder(environment: environment)
        guard let base = executable(named: "python3", environment: environment) else {
            throw ForgeError("no python3 on PATH to create the pretix environment with", at: SourceLocation(file: "environment"), keyPath: "PATH",
                             fix: "install Python 3 with venv (Debian: apt-get install python3 python3-venv), or pass --python with an interpreter that has pretix")
        }
        // A new pin or another Python gets an environment of its own.
        let key = Digest.sha256(Data((requirements + "\n" + URL(fileURLWithPath: base).resolvingSymlinksInPath().path).utf8)).hexString.prefix(10)
        let name = "pretix-\(pinnedPretixVersion)-\(key)"
        let target = folder.appendingPathComponent(name)
        let python = target.appendingPathComponent("bin/python").path
        let ready = target.appendingPathComponent(readyMarker)
        if FileManager.default.fileExists(atPath: ready.path) {
            do {
                return try probe(python, needsSelenium: true, signals: signals, environment: environment)
            } catch let error as ForgeError {
                report("the cached pretix environment does not work any more (\(error.diagnostics.first?.message ?? "")); creating it anew", false)
            }
        }
        try create(target, base: base, signals: signals, environment: environment, report: report)
        return try probe(python, needsSelenium: true, signals: signals, environment: environment)
    }

    static let readyMarker = ".pretix-forge-ready"

    /// Built in a staging folder and renamed into place when complete, so an interrupted
    /// creation never looks usable and two first runs at once do not trip over each other.
    private static func create(_ target: URL, base: String, signals: SignalWatcher, environment: [String: String],
                               report: (String, Bool) -> Void) throws {
        let fileManager = FileManager.default
        let folder = target.deletingLastPathComponent()
        let stagingPrefix = "." + target.lastPathComponent + ".partial-"
        let staging = folder.appendingPathComponent(stagingPrefix + String(getpid()))
        let location = SourceLocation(file: target.path)
        do {
            try fileManager.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw ForgeError("cannot create the cache folder: \(describe(error))", at: SourceLocation(file: folder.path),
                             fix: "check that it is writable, set XDG_CACHE_HOME to a writable folder, or pass --python")
        }
        removeAbandoned(in: folder, prefix: stagingPrefix)
        if fileManager.fileExists(atPath: target.path) {
            try? fileManager.removeItem(at: target)  // ours, but incomplete or broken: made anew
        }
        let started = Date()
        report("first use: creating the pretix \(pinnedPretixVersion) environment in \(target.path) with pip (a minute or two; reused afterwards)", false)
        do {
            try? fileManager.removeItem(at: staging)
            // venv's and pip's temporary files go inside the staging folder, so an interrupted
            // pip (killed, it cannot clean up) leaves nothing outside what is removed below.
            let temporary = staging.appendingPathComponent("tmp")
            try fileManager.createDirectory(at: temporary, withIntermediateDirectories: true)
            var environment = environment
            environment["TMPDIR"] = temporary.path
            let venv = try CapturedRun(base, ["-m", "venv", staging.path], environment: environment, signals: signals, timeout: 300)
            guard venv.status == 0 else {
                throw ForgeError("python3 -m venv failed (exit \(venv.status)): \(venv.lines.suffix(5).joined(separator: " / "))", at: location,
                                 fix: "install the venv module (Debian: apt-get install python3-venv), or pass --python")
            }
            let requirementsFile = staging.appendingPathComponent("requirements.txt")
            try Data(requirements.utf8).write(to: requirementsFile)
            var collected = 0
            let pip = try CapturedRun(
                staging.appendingPathComponent("bin/python").path,
                ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off", "-r", requirementsFile.path],
                environment: environment, signals: signals, timeout: 1800
            ) { line in
                if line.hasPrefix("Collecting ") {
                    collected += 1
                    report("pip: collecting \(line.dropFirst(11).split(separator: " ").first ?? "") (\(collected) packages)", true)
                } else if line.hasPrefix("Installing collected packages") {
                    report("pip: installing \(collected) packages", true)
                }
            }
            guard pip.status == 0 else {
                throw ForgeError("pip could not install the pretix environment (exit \(pip.status)):\n\(pip.lines.suffix(15).joined(separator: "\n"))",
                                 at: location, fix: "check the network connection to PyPI (or your pip index), or pass --python with an interpreter that has pretix")
            }
            try fileManager.removeItem(at: temporary)
            try Data().write(to: staging.appendingPathComponent(readyMarker))
        } catch {
            try? fileManager.removeItem(at: staging)
            if let forgeError = error as? ForgeError { throw forgeError }
            if error is DemoInterrupted { throw error }
            throw ForgeError("cannot create the pretix environment: \(describe(error))", at: location)
        }
        if rename(staging.path, target.path) != 0 {
            try? fileManager.removeItem(at: staging)  // another run finished first; its copy is as good
            guard fileManager.fileExists(atPath: target.appendingPathComponent(readyMarker).path) else {
                throw ForgeError("cannot move the new pretix environment into place: \(String(cString: strerror(errno)))", at: location)
            }
        }
        report("pretix environment ready in \(Int(Date().timeIntervalSince(started).rounded())) s", false)
    }

    private static func removeAbandoned(in folder: URL, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: folder.appendingPathComponent(name))
        }
    }

    static func pin(_ package: String) -> String? {
        requirements.split(separator: "\n").first { $0.hasPrefix(package + "==") }.map(String.init)
    }

    /// `name` on PATH, as a shell would find it.
    public static func executable(named name: String, environment: [String: String]) -> String? {
        for directory in (environment["PATH"] ?? "").split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// A child run to completion with its output (stdout and stderr) read line by line; a stop
/// signal meanwhile kills its process group and throws DemoInterrupted.
struct CapturedRun {
    var status: Int32
    var lines: [String]

    init(_ executable: String, _ arguments: [String], environment: [String: String], signals: SignalWatcher, timeout: Double,
         onLine: (String) -> Void = { _ in }) throws {
        var pipe: [Int32] = [0, 0]
        guard Glibc.pipe(&pipe) == 0 else {
            throw ForgeError("cannot create a pipe: \(String(cString: strerror(errno)))", at: SourceLocation(file: executable))
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(executable, arguments, environment: environment, output: pipe[1], errors: pipe[1])
        } catch {
            close(pipe[0])
            close(pipe[1])
            throw error
        }
        close(pipe[1])
        defer { close(pipe[0]) }
        let deadline = Date().addingTimeInterval(timeout)
        var pending = Data()
        var lines: [String] = []
        var open = true
        while open || child.poll() == nil {
            let (received, readable) = signals.wait(timeout: 0.2, alsoReadable: open ? pipe[0] : nil)
            if !received.isEmpty || Date() > deadline {
                child.signalGroup(SIGKILL)
                while child.poll() == nil { usleep(10_000) }
                if !received.isEmpty { throw DemoInterrupted() }
                throw ForgeError("did not finish within \(Int(timeout)) s", at: SourceLocation(file: executable))
            }
            guard readable else { continue }
            var buffer = [UInt8](repeating: 0, count: 65536)
            let count = read(pipe[0], &buffer, buffer.count)
            if count <= 0 {
                open = false
                continue
            }
            pending.append(contentsOf: buffer[..<count])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...newline)
                lines.append(line)
                onLine(line)
            }
        }
        if !pending.isEmpty { lines.append(String(decoding: pending, as: UTF8.self)) }
        self.status = child.exitStatus ?? 255
        self.lines = lines
    }
}
