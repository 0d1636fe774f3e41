import FoundationEssentials
import TOMLKit

/// Reads a pretix-forge TOML config into a validated `ForgeConfig`, collecting every problem
/// (unknown keys, wrong types, bad values, secrets) before reporting any of them.
public enum ConfigLoader {
    /// Name used in messages for the configuration compiled into the binary.
    public static let embeddedDefaultName = "<embedded default config>"

    /// The commented stock config `init` writes, rendered from `ConfigSchema`;
    /// `Examples/noderails.toml` is a copy tests hold to it.
    public static var defaultSource: String {
        ConfigSchema.starterConfig
    }

    /// The stock NodeRails plugin configuration.
    public static func loadDefault() throws(ForgeError) -> ForgeConfig {
        try embeddedDefault.get()
    }

    /// The embedded default never changes within a run; the renderer's tag check and a build
    /// of the stock plugin both need it, so it is parsed and validated once.
    private static let embeddedDefault = Result { () throws(ForgeError) -> ForgeConfig in
        try load(source: defaultSource, file: embeddedDefaultName, baseDirectory: nil)
    }

    public static func load(file path: String, confinedTo confinement: ConfigConfinement? = nil) throws(ForgeError) -> ForgeConfig {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw ForgeError("cannot read the config file", at: SourceLocation(file: path),
                             fix: "check the path given to --config, or create one with `pretix-forge init \(path)`")
        }
        guard let source = String(data: data, encoding: .utf8) else {
            throw ForgeError("the config file is not UTF-8 text", at: SourceLocation(file: path),
                             fix: "save it as UTF-8 (TOML requires it)")
        }
        return try load(source: source, file: path, baseDirectory: url.deletingLastPathComponent(), confinedTo: confinement)
    }

    /// - Parameter baseDirectory: where relative paths in the config (license_file) start;
    ///   nil for the embedded default, which has none.
    /// - Parameter confinement: set for a config a tree holds, whose files must be the tree's too.
    public static func load(source: String, file: String, baseDirectory: URL?,
                            confinedTo confinement: ConfigConfinement? = nil) throws(ForgeError) -> ForgeConfig {
        let prescan = TOMLPrescan(source: source)
        if let tooDeep = prescan.tooDeep {
            throw ForgeError("tables, dotted keys, arrays and inline tables nest more than \(TOMLPrescan.maximumDepth) levels deep",
                             at: SourceLocation(file: file, line: tooDeep.line), keyPath: tooDeep.key,
                             fix: "flatten it: a pretix-forge config nests four levels at most ([noderails.chains] 8453 = { name = \"…\" })")
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: source)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            if prescan.unterminatedStringLines.contains(line) {
                throw ForgeError("invalid TOML: unterminated string", at: SourceLocation(file: file, line: line),
                                 fix: "close the string on line \(line) with the quote it opens with; text over several lines goes between \"\"\" and \"\"\"")
            }
            throw ForgeError("invalid TOML: \(error.description)",
                             at: SourceLocation(file: file, line: line),
                             fix: "correct the syntax at line \(line), column \(error.source.begin.column)")
        } catch {
            throw ForgeError("invalid TOML: \(error)", at: SourceLocation(file: file))
        }
        let reader = ConfigReader(root: root, source: source, file: file, baseDirectory: baseDirectory, confinement: confinement)
        let config = reader.readConfig()
        if !reader.diagnostics.isEmpty {
            throw ForgeError(reader.diagnostics.sorted { ($0.location.line ?? 0, $0.keyPath ?? "") < ($1.location.line ?? 0, $1.keyPath ?? "") })
        }
        guard let config else {
            throw ForgeError("the config could not be read", at: SourceLocation(file: file))
        }
        return config
    }
}
