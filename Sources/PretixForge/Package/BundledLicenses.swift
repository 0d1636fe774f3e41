import FoundationEssentials

/// The licences pretix-forge's static binary owes for what it links, besides pretix-forge's own:
/// `scripts/licenses.py` collects them at `make dist` from the linker's map into a folder, and
/// `package-self --licenses` reads that folder into the wheel's `.dist-info/licenses/`.
///
/// The folder holds `expression`, the SPDX expression of the whole binary, ours included, and
/// `files/<component>/<file>`, each component's licence texts.
public struct BundledLicenses: Sendable {
    public struct File: Sendable, Equatable {
        /// Relative to `.dist-info/licenses/`, and as the METADATA's `License-File` names it.
        public var path: String
        public var data: Data
    }

    public var expression: String
    public var files: [File]

    init(expression: String, files: [File]) {
        self.expression = expression
        self.files = files
    }

    public init(folder: String) throws(ForgeError) {
        let root = URL(fileURLWithPath: folder, isDirectory: true).standardizedFileURL
        let expressionFile = root.appendingPathComponent("expression").path
        guard let expressionData = FileManager.default.contents(atPath: expressionFile) else {
            throw ForgeError("has no SPDX expression", at: SourceLocation(file: expressionFile), keyPath: "--licenses",
                             fix: "pass the folder scripts/licenses.py writes (make dist: .build-release/licenses)")
        }
        expression = String(decoding: expressionData, as: UTF8.self).trimming(.whitespacesAndNewlines)
        guard !expression.isEmpty, !expression.contains("\n") else {
            throw ForgeError("must hold one SPDX expression on one line", at: SourceLocation(file: expressionFile),
                             keyPath: "--licenses", fix: "run scripts/licenses.py again (make dist)")
        }
        let filesRoot = root.appendingPathComponent("files", isDirectory: true).path
        var found: [File] = []
        for path in (try? FileManager.default.subpathsOfDirectory(atPath: filesRoot)) ?? [] {
            let full = filesRoot + "/" + path
            var isDirectory = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory else {
                continue
            }
            // A component's files sit in its own folder: none can take the place of our LICENSE.
            guard path.contains("/"), let data = FileManager.default.contents(atPath: full) else {
                throw ForgeError("is not a component's licence file", at: SourceLocation(file: full), keyPath: "--licenses",
                                 fix: "keep each licence in files/<component>/, as scripts/licenses.py writes them")
            }
            found.append(File(path: path, data: data))
        }
        guard !found.isEmpty else {
            throw ForgeError("holds no licence file", at: SourceLocation(file: filesRoot), keyPath: "--licenses",
                             fix: "run scripts/licenses.py again (make dist); a static binary always links someone's code")
        }
        // Sorted, so the same folder always gives the same wheel.
        files = found.sorted { $0.path < $1.path }
    }
}
