import FoundationEssentials
import Synchronization

/// The resource files compiled into the binary by the EmbedResources build plugin:
/// `Templates/…`, `compat.toml`, `Vectors/webhook-signatures.json`, `Licenses/…`,
/// `Demo/…`, `Simulator/noderails_sim/…`.
public enum EmbeddedFiles {
    /// Logical path → base64, decoded on first use: a build needs the templates, not the demo's
    /// and the simulator's files, and decoding everything was a tenth of a build's start.
    private static let encoded: [String: String] = Dictionary(
        EmbeddedResources.base64Files.map { ($0.path, $0.base64) }, uniquingKeysWith: { first, _ in first })
    private static let decoded = Mutex<[String: Data]>([:])

    public static func data(_ path: String) -> Data {
        if let data = decoded.withLock({ $0[path] }) { return data }
        guard let base64 = encoded[path], let data = Data(base64Encoded: base64) else {
            preconditionFailure("resource \(path) was not embedded; check Plugins/EmbedResources")
        }
        decoded.withLock { $0[path] = data }
        return data
    }

    public static func text(_ path: String) -> String {
        String(decoding: data(path), as: UTF8.self)
    }

    /// Files under a logical folder, keyed by their path inside it.
    public static func folder(_ prefix: String) -> [String: Data] {
        var result: [String: Data] = [:]
        for path in encoded.keys where path.hasPrefix(prefix + "/") {
            result[String(path.dropFirst(prefix.count + 1))] = data(path)
        }
        return result
    }
}
