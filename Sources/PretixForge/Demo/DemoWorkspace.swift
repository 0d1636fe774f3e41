import FoundationEssentials
import Glibc

/// The demo's throwaway folder under $TMPDIR: the sdist, the embedded Python (the demo driver
/// and the NodeRails simulator), the spec the driver reads, pretix's data and the browser's
/// profile. Deleted as a whole when the demo ends.
final class DemoWorkspace {
    let root: URL
    let specPath: String
    let driverEnvironment: [String: String]

    /// The embedded Python packages written into `runtime/`, by their folder in the binary.
    static let runtimePackages = ["Demo/forge_demo", "Simulator/noderails_sim"]

    init(config: ForgeConfig, distribution: Distribution, port: Int, environment: [String: String], compressFolder: String,
         browser: Browser?) throws {
        let temporary = Self.temporaryFolder(environment)
        var template = Array("\(temporary)/pretix-forge-demo-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ForgeError("cannot create the demo's throwaway folder: \(String(cString: strerror(errno)))",
                             at: SourceLocation(file: temporary), keyPath: "TMPDIR", fix: "point TMPDIR at a writable folder")
        }
        root = URL(fileURLWithPath: String(cString: made))
        specPath = root.appendingPathComponent("spec.json").path
        let runtime = root.appendingPathComponent("runtime")
        let sdist = root.appendingPathComponent("dist").appendingPathComponent(distribution.sdistName)
        do {
            var files: [URL: Data] = [sdist: distribution.sdist]
            for package in Self.runtimePackages {
                let name = String(package.split(separator: "/").last!)
                for (relative, data) in EmbeddedFiles.folder(package) {
                    files[runtime.appendingPathComponent(name).appendingPathComponent(relative)] = data
                }
            }
            let spec = DemoSpec(config: config, workspace: root, sdist: sdist, port: port, compressFolder: compressFolder, browser: browser)
            files[URL(fileURLWithPath: specPath)] = try spec.json()
            for (url, data) in files {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url)
            }
            try FileManager.default.createDirectory(at: root.appendingPathComponent("tmp"), withIntermediateDirectories: true)
        } catch {
            try? FileManager.default.removeItem(at: root)
            throw ForgeError("cannot write the demo's throwaway folder: \(describe(error))", at: SourceLocation(file: root.path))
        }
        driverEnvironment = Self.driverEnvironment(environment, runtime: runtime.path, temporary: root.appendingPathComponent("tmp").path)
    }

    /// $TMPDIR, else /tmp: where the throwaway folder is made.
    static func temporaryFolder(_ environment: [String: String]) -> String {
        let folder = environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        return folder.count > 1 && folder.hasSuffix("/") ? String(folder.dropLast()) : folder
    }

    /// The user's environment minus what would point pretix elsewhere: PRETIX_* variables are
    /// pretix config overrides (a database!), and the demo's own code comes first on the path.
    static func driverEnvironment(_ environment: [String: String], runtime: String, temporary: String) -> [String: String] {
        var result = environment.filter { key, _ in
            !key.hasPrefix("PRETIX_") && !["DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"].contains(key)
        }
        result["PYTHONPATH"] = runtime
        result["PYTHONUNBUFFERED"] = "1"
        result["TMPDIR"] = temporary  // pip's, Chromium's and everyone's temporary files go with the rest
        // Everything talks to 127.0.0.1; a configured HTTP proxy must not get those requests.
        for name in ["NO_PROXY", "no_proxy"] {
            result[name] = (["127.0.0.1", "localhost"] + (result[name].map { [$0] } ?? [])).joined(separator: ",")
        }
        return result
    }

    /// The screenshots the demo wrote, by their path inside the screenshots folder.
    func screenshots() throws(ForgeError) -> [String: Data] {
        let folder = root.appendingPathComponent("screenshots")
        var files: [String: Data] = [:]
        for path in (try? FileManager.default.subpathsOfDirectory(atPath: folder.path)) ?? [] {
            let file = folder.appendingPathComponent(path)
            var isDirectory = false
            guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory,
                  let data = try? Data(contentsOf: file) else { continue }
            files[path] = data
        }
        guard files[DemoRunner.screenshotsMarker] != nil else {
            throw ForgeError("the demo finished without writing its screenshots", at: SourceLocation(file: folder.path))
        }
        return files
    }

    func remove() {
        try? FileManager.default.removeItem(at: root)
    }
}

/// What `python -m forge_demo` reads (Demo/forge_demo/__main__.py).
struct DemoSpec: Encodable {
    struct Package: Encodable {
        var name, version, module: String
    }

    struct Provider: Encodable {
        var identifier, webhookPath, publicName: String
    }

    var workspace, sdist, site: String
    var port: Int
    var package: Package
    var provider: Provider
    var currency: String
    var languages: [String]
    var signaturePayload, timestampUnit: String
    var compressDir: String
    var screenshots: String?
    var chromium, chromedriver: String?
    var parentPid: Int32

    init(config: ForgeConfig, workspace: URL, sdist: URL, port: Int, compressFolder: String, browser: Browser?) {
        self.workspace = workspace.path
        self.sdist = sdist.path
        site = workspace.appendingPathComponent("site").path
        self.port = port
        package = Package(name: config.package.name, version: config.package.version, module: config.package.module)
        provider = Provider(identifier: config.provider.identifier, webhookPath: config.provider.webhookPath, publicName: config.provider.publicName)
        currency = config.noderails.currency
        let languages = Set(config.branding.texts.values.flatMap(\.keys))
        self.languages = ["en", "de"].filter(languages.contains) + languages.subtracting(["en", "de"]).sorted()
        signaturePayload = config.webhook.signaturePayload.rawValue
        timestampUnit = config.webhook.timestampUnit.rawValue
        compressDir = compressFolder
        screenshots = browser == nil ? nil : workspace.appendingPathComponent("screenshots").path
        chromium = browser?.chromium
        chromedriver = browser?.chromedriver
        parentPid = getpid()
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
