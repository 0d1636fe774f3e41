import Dispatch
import FoundationEssentials
import Glibc

/// The release artifacts of one plugin variant, built in memory.
public struct Distribution: Sendable {
    public var sdistName: String
    public var sdist: Data
    public var wheelName: String
    public var wheel: Data
    /// SHA-256 of each archive (hex), computed on the thread that built it.
    public var sdistSHA256: String
    public var wheelSHA256: String

    /// `sha256sum`-compatible lines for both archives.
    public var checksums: String {
        "\(sdistSHA256)  \(sdistName)\n\(wheelSHA256)  \(wheelName)\n"
    }

    public var files: [(name: String, data: Data)] {
        [(sdistName, sdist), (wheelName, wheel), ("SHA256SUMS", Data(checksums.utf8))]
    }
}

/// Package stage: plugin tree → reproducible sdist (PEP 625) and wheel (py3-none-any).
public struct DistributionBuilder: Sendable {
    /// hatchling's default when SOURCE_DATE_EPOCH is unset: fixed, so builds reproduce anyway.
    public static let defaultTimestamp = 1_580_601_600
    /// Zip stores DOS dates, which start in 1980.
    static let earliestZipTimestamp = 315_532_800

    public var timestamp: Int
    public var generator: String

    public init(timestamp: Int = DistributionBuilder.defaultTimestamp, generator: String) {
        self.timestamp = timestamp
        self.generator = generator
    }

    /// SOURCE_DATE_EPOCH when set (reproducible-builds.org), else the fixed default.
    public static func timestamp(from environment: [String: String]) throws(ForgeError) -> Int {
        guard let text = environment["SOURCE_DATE_EPOCH"], !text.isEmpty else { return defaultTimestamp }
        guard let value = Int(text), value >= 0 else {
            throw ForgeError("SOURCE_DATE_EPOCH='\(text)' is not a whole number of seconds", at: SourceLocation(file: "environment"),
                             keyPath: "SOURCE_DATE_EPOCH", fix: "set it to a Unix timestamp such as $(git log -1 --format=%ct), or unset it")
        }
        return value
    }

    /// - Parameter sdistOnly: files only the sdist holds (the tree's manifest), made on the sdist's
    ///   thread while the wheel, which does not need them, is built: hashing every file for the
    ///   manifest first held both archives up.
    public func build(_ tree: PluginTree, config: ForgeConfig,
                      sdistOnly: @Sendable () -> [String: Data] = { [:] }) throws(ForgeError) -> Distribution {
        let metadata: ProjectMetadata
        do {
            metadata = try ProjectMetadata(pyproject: String(decoding: tree.files["pyproject.toml"] ?? Data(), as: UTF8.self), tree: tree)
        } catch {
            throw ForgeError(error.message, at: SourceLocation(file: "pyproject.toml"))
        }
        let base = "\(config.package.normalizedName)-\(config.package.version)"
        // Both archives at once: compressing is most of a build, and a single variant would
        // otherwise leave the second core idle.
        let archives = ConcurrentSlots<Result<(Data, String), ArchiveWriter.Failure>>(count: 2)
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            archives.set(index, Result { () throws(ArchiveWriter.Failure) -> (Data, String) in
                let archive = index == 0 ? try buildSdist(tree, adding: sdistOnly(), metadata: metadata, base: base)
                    : try buildWheel(tree, metadata: metadata, base: base, module: config.package.module)
                return (archive, Digest.sha256(archive).hexString)
            })
        }
        do {
            let built = archives.values
            let (sdist, sdistSHA256) = try built[0]!.get(), (wheel, wheelSHA256) = try built[1]!.get()
            return Distribution(sdistName: "\(base).tar.gz", sdist: sdist, wheelName: "\(base)-py3-none-any.whl", wheel: wheel,
                                sdistSHA256: sdistSHA256, wheelSHA256: wheelSHA256)
        } catch {
            throw ForgeError("archive could not be written: \(error.description)", at: SourceLocation(file: base))
        }
    }

    private func buildSdist(_ tree: PluginTree, adding extra: [String: Data], metadata: ProjectMetadata, base: String) throws(ArchiveWriter.Failure) -> Data {
        var files = tree.files.merging(extra) { $1 }
        files["PKG-INFO"] = Data(metadata.render().utf8)
        let paths = files.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let entries = paths.map { ArchiveWriter.Entry(path: "\(base)/\($0)", data: files[$0]!) }
        return try ArchiveWriter.write(entries, format: .tarGzip, mtime: timestamp, directories: Self.directories(of: paths, under: base))
    }

    /// Every folder, listed before its contents, so extraction gives normal modes.
    static func directories(of paths: [String], under base: String) -> [String] {
        var folders: Set<String> = [base]
        for path in paths {
            var parts = path.split(separator: "/").dropLast()
            while !parts.isEmpty {
                folders.insert("\(base)/" + parts.joined(separator: "/"))
                parts = parts.dropLast()
            }
        }
        return folders.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { $0 + "/" }
    }

    private func buildWheel(_ tree: PluginTree, metadata: ProjectMetadata, base: String, module: String) throws(ArchiveWriter.Failure) -> Data {
        let distInfo = "\(base).dist-info"
        var entries: [ArchiveWriter.Entry] = tree.sortedPaths
            .filter { $0.hasPrefix(module + "/") }
            .map { ArchiveWriter.Entry(path: $0, data: tree.files[$0]!) }
        var infoFiles: [(String, Data)] = [
            ("METADATA", Data(metadata.render().utf8)),
            ("WHEEL", Data("Wheel-Version: 1.0\nGenerator: \(generator)\nRoot-Is-Purelib: true\nTag: py3-none-any\n".utf8)),
            ("entry_points.txt", Data(metadata.renderEntryPoints().utf8)),
            // setuptools writes it too; keeping it makes our file list equal a setuptools build's.
            ("top_level.txt", Data("\(module)\n".utf8)),
        ]
        infoFiles += metadata.licenseFiles.compactMap { path in tree.files[path].map { ("licenses/\(path)", $0) } }
        entries += infoFiles.sorted { $0.0 < $1.0 }.map { ArchiveWriter.Entry(path: "\(distInfo)/\($0.0)", data: $0.1) }
        var record = entries.map { "\(Self.csvField($0.path)),sha256=\(Digest.sha256($0.data).urlSafeBase64NoPadding),\($0.data.count)\n" }.joined()
        record += "\(distInfo)/RECORD,,\n"
        entries.append(ArchiveWriter.Entry(path: "\(distInfo)/RECORD", data: Data(record.utf8)))
        _ = ArchiveWriter.zipTimesInUTC
        return try ArchiveWriter.write(entries, format: .zip, mtime: max(timestamp, Self.earliestZipTimestamp))
    }

    static func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacing("\"", with: "\"\"") + "\"" : text
    }
}

extension ArchiveWriter {
    /// libarchive converts zip entry times with localtime(); pin the zone so the DOS
    /// timestamps, and hence the bytes, are the same on every machine. A static let runs
    /// once, thread-safely: setenv must not race the localtime() calls of parallel builds.
    static let zipTimesInUTC: Void = {
        setenv("TZ", "UTC", 1)
        tzset()
    }()
}
