import FoundationEssentials

/// Package stage for pretix-forge itself: its own static binary as a platform wheel, so
/// `pip install pretix-forge` puts it on PATH the way ruff's and uv's wheels do.
///
/// The binary goes to `<name>.data/scripts/`, which installers copy to the environment's
/// `bin/` unchanged; the wheel holds no Python. Its tag is `py3-none-manylinux_X_Y_<arch>`, X.Y
/// being the newest glibc symbol version the binary binds to (PEP 600), so pip installs it on
/// exactly the systems it runs on.
public struct ToolWheel: Sendable {
    public static let distributionName = "pretix_forge"
    public static let scriptName = "pretix-forge"

    public var name: String
    public var data: Data

    /// `sha256sum`-compatible line for the wheel.
    public var checksum: String { "\(Digest.sha256(data).hexString)  \(name)\n" }

    /// `licenses`: what the binary links besides our code (`scripts/licenses.py`); the wheel ships
    /// those texts beside our LICENSE and declares their expression.
    public init(binary: Data, readme: String, licenses: BundledLicenses, timestamp: Int) throws(ForgeError) {
        let location = SourceLocation(file: "pretix-forge binary")
        let dependencies: ELFDependencies
        do {
            dependencies = try ELFDependencies(elf: binary)
        } catch {
            throw ForgeError("cannot be packaged: \(error.description)", at: location, fix: "pass a Linux build of pretix-forge with --binary")
        }
        guard dependencies.nonGlibcLibraries.isEmpty else {
            throw ForgeError("loads \(dependencies.nonGlibcLibraries.joined(separator: ", ")), which a manylinux wheel cannot rely on",
                             at: location, fix: "build it with `make dist`, which links the Swift runtime, libarchive and OpenSSL statically")
        }
        guard let glibc = dependencies.requiredGlibc else {
            throw ForgeError("binds to no glibc symbol version, so it has no manylinux tag", at: location,
                             fix: "pass a dynamically linked glibc build of pretix-forge with --binary")
        }
        let base = "\(Self.distributionName)-\(Pipeline.toolVersion)"
        let tag = "py3-none-manylinux_\(glibc.major)_\(glibc.minor)_\(dependencies.machine.wheelArchitecture)"
        let metadata = Self.metadata(readme: readme, licenses: licenses)
        let distInfo = "\(base).dist-info"
        var entries = [ArchiveWriter.Entry(path: "\(base).data/scripts/\(Self.scriptName)", data: binary, executable: true)]
        entries += [
            ("METADATA", Data(metadata.render().utf8)),
            ("WHEEL", Data("Wheel-Version: 1.0\nGenerator: \(Pipeline.generator)\nRoot-Is-Purelib: false\nTag: \(tag)\n".utf8)),
            ("licenses/LICENSE", EmbeddedFiles.data("Licenses/Apache-2.0.txt")),
        ].map { ArchiveWriter.Entry(path: "\(distInfo)/\($0.0)", data: $0.1) }
        entries += licenses.files.map { ArchiveWriter.Entry(path: "\(distInfo)/licenses/\($0.path)", data: $0.data) }
        var record = entries.map { "\(DistributionBuilder.csvField($0.path)),sha256=\(Digest.sha256($0.data).urlSafeBase64NoPadding),\($0.data.count)\n" }
            .joined()
        record += "\(distInfo)/RECORD,,\n"
        entries.append(ArchiveWriter.Entry(path: "\(distInfo)/RECORD", data: Data(record.utf8)))
        _ = ArchiveWriter.zipTimesInUTC
        name = "\(base)-\(tag).whl"
        do {
            data = try ArchiveWriter.write(entries, format: .zip, mtime: max(timestamp, DistributionBuilder.earliestZipTimestamp))
        } catch {
            throw ForgeError("archive could not be written: \(error.description)", at: SourceLocation(file: name))
        }
    }

    static func metadata(readme: String, licenses: BundledLicenses) -> ProjectMetadata {
        ProjectMetadata(
            name: "pretix-forge", version: Pipeline.toolVersion,
            summary: "Generate, package and verify the NodeRails crypto-checkout payment plugin for pretix.",
            authors: [], licenseExpression: licenses.expression, licenseFiles: ["LICENSE"] + licenses.files.map(\.path),
            requiresPython: nil,
            keywords: ["pretix", "payment", "plugin", "generator", "noderails"],
            classifiers: [
                "Development Status :: 4 - Beta",
                "Environment :: Console",
                "Framework :: Django",
                "Intended Audience :: Developers",
                "Operating System :: POSIX :: Linux",
                "Topic :: Software Development :: Build Tools",
                "Topic :: Software Development :: Code Generators",
            ],
            urls: [("Source", Pipeline.sourceRepository)], dependencies: [], optionalDependencies: [], entryPoints: [],
            readme: readme, readmeContentType: "text/markdown")
    }
}
