import FoundationEssentials
import Synchronization

/// The resource files compiled into the binary by the EmbedResources build plugin:
/// `Templates/…`, `compat.toml`, `Vectors/webhook-signatures.json`, `Licenses/…`,
/// `Demo/…`, `Simulator/noderails_sim/…`.
public enum EmbeddedFiles {
    /// How a file is stored: UTF-8 text as a string literal, whose bytes are the file's; anything
    /// else base64-encoded.
    private enum Stored {
        case text(StaticString)
        case base64(String)
    }

    /// Logical path → the stored file, read into Data on first use: a build needs the templates,
    /// not the demo's and the simulator's files.
    private static let stored: [String: Stored] = Dictionary(
        EmbeddedResources.textFiles.map { ($0.path, Stored.text($0.text)) } + EmbeddedResources.base64Files.map { ($0.path, .base64($0.base64)) },
        uniquingKeysWith: { first, _ in first })
    private static let loaded = Mutex<[String: Data]>([:])

    public static func data(_ path: String) -> Data {
        if let data = loaded.withLock({ $0[path] }) { return data }
        let data: Data?
        switch stored[path] {
        case .text(let text)?: data = Data(bytes: text.utf8Start, count: text.utf8CodeUnitCount)
        case .base64(let base64)?: data = Data(base64Encoded: base64)
        case nil: data = nil
        }
        guard let data else { preconditionFailure("resource \(path) was not embedded; check Plugins/EmbedResources") }
        loaded.withLock { $0[path] = data }
        return data
    }

    public static func text(_ path: String) -> String {
        String(decoding: data(path), as: UTF8.self)
    }

    /// Files under a logical folder, keyed by their path inside it.
    public static func folder(_ prefix: String) -> [String: Data] {
        var result: [String: Data] = [:]
        for path in stored.keys where path.hasPrefix(prefix + "/") {
            result[String(path.dropFirst(prefix.count + 1))] = data(path)
        }
        return result
    }
}
