import TOMLKit

/// The pretix and Python versions every generated plugin claims (`compat.toml`, embedded): the
/// same list `make test` proves them on, so the claim cannot outrun the tests.
public struct Compatibility: Sendable {
    /// pretix releases the real-pretix suite runs on, oldest first.
    public let pretixVersions: [String]
    /// The Python minor versions the plugin's unit tests run on, oldest first.
    public let pythonVersions: [String]
    /// The Python the integration tests run pretix on.
    public let pretixPython: String

    public static let embedded: Compatibility = {
        guard let table = try? TOMLTable(string: EmbeddedFiles.text("compat.toml")),
              let pretix = table["pretix"]?.table, let python = table["python"]?.table,
              let pretixVersions = pretix["versions"]?.array?.compactMap(\.string), !pretixVersions.isEmpty,
              let pretixPython = pretix["python"]?.string,
              let pythonVersions = python["versions"]?.array?.compactMap(\.string), !pythonVersions.isEmpty else {
            preconditionFailure("compat.toml must list [pretix] versions and python, and [python] versions")
        }
        return Compatibility(pretixVersions: pretixVersions, pythonVersions: pythonVersions, pretixPython: pretixPython)
    }()

    public var oldestPretix: String { pretixVersions[0] }
    public var newestPretix: String { pretixVersions[pretixVersions.count - 1] }

    /// True when release `version` comes before `other` (both canonical PEP 440); a pre-release
    /// or dev release comes before its final release.
    static func isOlder(_ version: String, than other: String) -> Bool {
        func parts(_ text: String) -> (release: [Int], final: Bool) {
            // An epoch ("1!") leads the release, so it is compared first.
            let epoch = text.firstIndex(of: "!").map { Int(text[..<$0]) ?? 0 } ?? 0
            let rest = text.split(separator: "!").last ?? ""
            let release = rest.prefix { $0.isNumber || $0 == "." }
            return ([epoch] + release.split(separator: ".").map { Int($0) ?? 0 }, release.count == rest.count || rest.contains(".post"))
        }
        let (left, right) = (parts(version), parts(other))
        let width = max(left.release.count, right.release.count)
        let padded = { (release: [Int]) in release + Array(repeating: 0, count: width - release.count) }
        if padded(left.release) != padded(right.release) {
            return padded(left.release).lexicographicallyPrecedes(padded(right.release))
        }
        return !left.final && right.final
    }
}
