import FoundationEssentials
import Glibc

/// What `pretix-forge demo` was asked for.
public struct DemoOptions: Sendable {
    public var configPath: String?
    public var templates: TemplateSet
    public var port: Int
    public var python: String?
    public var screenshots: String?
    public var environment: [String: String]

    public init(configPath: String?, templates: TemplateSet, port: Int, python: String?, screenshots: String?,
                environment: [String: String]) {
        self.configPath = configPath
        self.templates = templates
        self.port = port
        self.python = python
        self.screenshots = screenshots
        self.environment = environment
    }
}

/// Where the demo tells its user what it does (stderr); `transient` lines may be redrawn in place.
public protocol DemoLog {
    func note(_ text: String, transient: Bool)
}

/// `pretix-forge demo`: the variant's sdist in a throwaway pretix with the NodeRails simulator.
///
/// Everything that can fail on bad input (config, templates, port, Chromium, the screenshots
/// folder, the interpreter) is checked before anything is started or written. The shop itself
/// runs in `python -m forge_demo` (Demo/ in this repository, embedded like the templates) in a
/// process group of its own that dies with pretix-forge; its throwaway folder is deleted at the
/// end, whichever way the demo ends.
public enum DemoRunner {
    /// The manifest every screenshots folder gets; a folder without it is never replaced.
    public static let screenshotsMarker = "pretix-forge-demo.json"
    /// How long the demo may take to stop after SIGTERM before its processes are killed.
    static let stopGrace: Double = 10

    /// Runs the demo; returns the exit status: 0 after Ctrl-C while serving or for finished
    /// screenshots, 130 for interrupted screenshots, 1 when the demo failed.
    public static func run(_ options: DemoOptions, log: DemoLog) throws -> Int32 {
        let environment = options.environment
        let config = try Pipeline.loadConfig(options.configPath)
        let tree = try Pipeline.render(config, templates: options.templates)
        let distribution = try Pipeline.distribution(config, tree: tree, environment: environment)
        let browser = try options.screenshots.map { _ throws(ForgeError) in try Browser.locate(environment: environment) }
        if let folder = options.screenshots { try checkScreenshotsFolder(folder) }
        try LoopbackPort.ensureFree(options.port)

        let signals = try SignalWatcher()
        Descendants.adoptOrphans()
        defer { Descendants.stopAll() }
        let interpreter: PretixInterpreter
        if let python = options.python {
            interpreter = try PretixEnvironment.probe(python, needsSelenium: options.screenshots != nil, signals: signals, environment: environment)
            if interpreter.pretixVersion != PretixEnvironment.pinnedPretixVersion {
                log.note("note: \(python) has pretix \(interpreter.pretixVersion); the demo is tested with \(PretixEnvironment.pinnedPretixVersion)", transient: false)
            }
        } else {
            interpreter = try PretixEnvironment.cached(environment: environment, signals: signals) { log.note($0, transient: $1) }
        }

        let workspace = try DemoWorkspace(
            config: config, distribution: distribution, port: options.port, environment: environment,
            compressFolder: try PretixEnvironment.cacheFolder(environment: environment).appendingPathComponent("compress").path,
            browser: browser)
        log.note("starting \(config.package.name) \(config.package.version) in pretix \(interpreter.pretixVersion) (throwaway data in \(workspace.root.path))", transient: false)
        let status: Int32
        do {
            let driver = try ChildProcess(interpreter.python, ["-m", "forge_demo", workspace.specPath], environment: workspace.driverEnvironment,
                                          directory: workspace.root.path, deathSignal: SIGTERM)
            let ending = supervise(driver, signals: signals, log: log)
            if let folder = options.screenshots {
                // Pictures only from a run that finished: an interrupted one writes nothing.
                status = ending.stopRequested ? 130 : ending.status
                if ending.stopRequested {
                    log.note("interrupted: no screenshots were written", transient: false)
                } else if status == 0 {
                    try AtomicOutput.replaceDirectory(folder, with: workspace.screenshots(), marker: screenshotsMarker)
                    log.note("screenshots and index.html written to \(folder)", transient: false)
                }
            } else {
                // Serving ends with Ctrl-C; anything else is a failure the demo has reported.
                status = ending.stopRequested ? 0 : max(ending.status, 1)
            }
        } catch {
            Descendants.stopAll()
            workspace.remove()
            throw error
        }
        Descendants.stopAll()
        workspace.remove()
        log.note("stopped; the throwaway pretix and its data are gone", transient: false)
        return status
    }

    /// Waits for the demo to end. The first stop signal asks the whole group to stop (SIGTERM),
    /// a second one or `stopGrace` seconds later kills it.
    static func supervise(_ driver: ChildProcess, signals: SignalWatcher, log: DemoLog) -> (status: Int32, stopRequested: Bool) {
        var stopRequested = false
        var killAt: Date?
        while driver.poll() == nil {
            let received = signals.wait(timeout: 0.2).signals
            if !received.isEmpty {
                if stopRequested {
                    driver.signalGroup(SIGKILL)
                } else {
                    stopRequested = true
                    killAt = Date().addingTimeInterval(stopGrace)
                    log.note("stopping the demo…", transient: false)
                    driver.signalGroup(SIGTERM)
                }
            }
            if let deadline = killAt, Date() > deadline {
                driver.signalGroup(SIGKILL)
                killAt = nil
            }
        }
        // Whatever the demo left in its group (it stops its children itself; this is the net).
        if driver.groupIsAlive {
            driver.signalGroup(SIGTERM)
            let deadline = Date().addingTimeInterval(3)
            while driver.groupIsAlive, Date() < deadline {
                Descendants.reapExited()
                usleep(50_000)
            }
            driver.signalGroup(SIGKILL)
        }
        return (driver.exitStatus ?? 1, stopRequested)
    }

    /// A screenshots folder is created, or replaced when it holds a previous run's manifest;
    /// a folder of the user's is never touched.
    static func checkScreenshotsFolder(_ folder: String) throws(ForgeError) {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) else { return }
        let location = SourceLocation(file: folder)
        guard isDirectory else {
            throw ForgeError("exists and is not a folder", at: location, keyPath: "--screenshots", fix: "choose a new or empty folder for --screenshots")
        }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        guard contents.isEmpty || contents.contains(screenshotsMarker) else {
            throw ForgeError("refusing to replace a folder that pretix-forge demo did not write (it has no \(screenshotsMarker))",
                             at: location, keyPath: "--screenshots", fix: "choose a new or empty folder for --screenshots")
        }
    }
}

/// Chromium and its driver for `--screenshots`, from PATH.
struct Browser: Sendable {
    var chromium: String
    var chromedriver: String

    /// Chromium listens on `<TMPDIR of the demo>/org.chromium.Chromium.XXXXXX/SingletonSocket`, a
    /// Unix socket, whose path may have at most 107 bytes; past that it aborts at start-up.
    static let socketPathLimit = 107
    static let socketPathBeyondTMPDIR = "/pretix-forge-demo-XXXXXX/tmp/org.chromium.Chromium.XXXXXX/SingletonSocket".utf8.count

    static func locate(environment: [String: String]) throws(ForgeError) -> Browser {
        let chromium = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"].lazy
            .compactMap { PretixEnvironment.executable(named: $0, environment: environment) }.first
        let chromedriver = PretixEnvironment.executable(named: "chromedriver", environment: environment)
        guard let chromium, let chromedriver else {
            let missing = [chromium == nil ? "Chromium (chromium)" : nil, chromedriver == nil ? "chromedriver" : nil].compactMap { $0 }
            throw ForgeError("--screenshots drives headless Chromium, but \(missing.joined(separator: " and ")) is not on PATH",
                             at: SourceLocation(file: "command line"), keyPath: "--screenshots",
                             fix: "install the Debian packages chromium and chromium-driver (sudo apt-get install chromium chromium-driver), or leave --screenshots out")
        }
        let temporary = DemoWorkspace.temporaryFolder(environment)
        if temporary.utf8.count + socketPathBeyondTMPDIR > socketPathLimit {
            throw ForgeError("the temporary folder's path is too long for Chromium, whose socket in it may be at most \(socketPathLimit) bytes long",
                             at: SourceLocation(file: "environment"), keyPath: "TMPDIR",
                             fix: "set TMPDIR to a folder whose path has at most \(socketPathLimit - socketPathBeyondTMPDIR) characters, e.g. TMPDIR=/tmp")
        }
        return Browser(chromium: chromium, chromedriver: chromedriver)
    }
}
