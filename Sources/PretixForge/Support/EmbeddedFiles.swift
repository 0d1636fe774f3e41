import FoundationEssentials

/// The resource files compiled into the binary by the EmbedResources build plugin:
/// `Templates/…`, `compat.toml`, `Vectors/webhook-signatures.json`, `Licenses/…`,
/// `Demo/…`, `Simulator/noderails_sim/…`.
public enum EmbeddedFiles {
    /// Logical path → bytes, decoded once.
    public static let all: [String: Data] = {
        var files: [String: Data] = [:]
        for entry in EmbeddedResources.base64Files {
            files[entry.path] = Data(base64Encoded: entry.base64)
        }
        return files
    }()

    public static func data(_ path: String) -> Data {
        guard let data = all[path] else {
            preconditionFailure("resource \(path) was not embedded; check Plugins/EmbedResources")
        }
        return data
    }

    public static func text(_ path: String) -> String {
        String(decoding: data(path), as: UTF8.self)
    }

    /// Files under a logical folder, keyed by their path inside it.
    public static func folder(_ prefix: String) -> [String: Data] {
        var result: [String: Data] = [:]
        for (path, data) in all where path.hasPrefix(prefix + "/") {
            result[String(path.dropFirst(prefix.count + 1))] = data
        }
        return result
    }
}
