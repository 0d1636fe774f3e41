import FoundationEssentials

/// What a Linux executable asks of the system it runs on, read from its ELF dynamic section:
/// the shared libraries it loads (DT_NEEDED) and the glibc symbol versions it binds to
/// (.gnu.version_r). A platform wheel's manylinux tag is derived from these (PEP 600).
public struct ELFDependencies: Equatable, Sendable {
    public var machine: Machine
    public var neededLibraries: [String]
    /// Every `GLIBC_x.y` version the binary binds a symbol to.
    public var glibcVersions: [GlibcVersion]

    public enum Machine: Equatable, Sendable {
        case x86_64, aarch64

        /// The architecture part of a wheel's platform tag.
        public var wheelArchitecture: String {
            switch self {
            case .x86_64: "x86_64"
            case .aarch64: "aarch64"
            }
        }
    }

    public struct GlibcVersion: Comparable, Hashable, Sendable, CustomStringConvertible {
        public var major: Int
        public var minor: Int

        public init(_ major: Int, _ minor: Int) {
            self.major = major
            self.minor = minor
        }

        /// `GLIBC_2.34` → 2.34; `GLIBC_2.2.5` → 2.2; anything else → nil.
        init?(symbolVersion: String) {
            guard symbolVersion.hasPrefix("GLIBC_") else { return nil }
            let parts = symbolVersion.dropFirst("GLIBC_".count).split(separator: ".").map { Int($0) }
            guard parts.count >= 2, let major = parts[0], let minor = parts[1] else { return nil }
            self.init(major, minor)
        }

        public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.major, lhs.minor) < (rhs.major, rhs.minor) }
        public var description: String { "\(major).\(minor)" }
    }

    /// The libraries every manylinux policy lets a wheel load from the system: glibc's own. GCC's
    /// runtimes are allowed by the policies too, but are linked statically here, so a wheel
    /// that needs them is a build mistake to report, not to ship.
    public static let glibcLibraries: Set<String> = [
        "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0", "libresolv.so.2", "libutil.so.1",
        "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
    ]

    /// The newest glibc the binary needs: the `x.y` of its `manylinux_x_y` tag.
    public var requiredGlibc: GlibcVersion? { glibcVersions.max() }

    /// Libraries the binary loads that are not glibc's.
    public var nonGlibcLibraries: [String] { neededLibraries.filter { !Self.glibcLibraries.contains($0) } }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init(elf data: Data) throws(Failure) {
        let bytes = [UInt8](data)
        let reader = ELFReader(bytes: bytes)
        guard bytes.count >= 64, bytes[0..<4] == [0x7F, 0x45, 0x4C, 0x46] else { throw Failure(description: "not an ELF file") }
        guard bytes[4] == 2, bytes[5] == 1 else { throw Failure(description: "not a 64-bit little-endian ELF file") }
        switch reader.u16(18) {
        case 62: machine = .x86_64
        case 183: machine = .aarch64
        case let other: throw Failure(description: "ELF machine \(other) is neither x86_64 nor aarch64")
        }
        let sections = try reader.sections()
        var needed: [String] = []
        var versions: Set<GlibcVersion> = []
        for section in sections {
            switch section.type {
            case ELFReader.dynamicSection:
                let strings = try reader.section(sections, at: section.link)
                for entry in stride(from: section.offset, to: section.offset + section.size, by: 16) where reader.u64(entry) == 1 {
                    needed.append(try reader.string(in: strings, at: Int(reader.u64(entry + 8))))
                }
            case ELFReader.versionNeedSection:
                let strings = try reader.section(sections, at: section.link)
                // Each entry names its successor by a relative offset, 0 after the last; the
                // counts are not trusted beyond that, so a damaged file cannot loop for long.
                var file = section.offset
                for _ in 0..<section.info {
                    var auxiliary = file + Int(reader.u32(file + 8))
                    for _ in 0..<reader.u16(file + 2) {
                        let name = try reader.string(in: strings, at: Int(reader.u32(auxiliary + 8)))
                        if let version = GlibcVersion(symbolVersion: name) { versions.insert(version) }
                        let next = Int(reader.u32(auxiliary + 12))
                        if next == 0 { break }
                        auxiliary += next
                    }
                    let next = Int(reader.u32(file + 12))
                    if next == 0 { break }
                    file += next
                }
            default:
                continue
            }
        }
        neededLibraries = needed
        glibcVersions = versions.sorted()
    }
}

/// Bounds-checked little-endian reads of an ELF64 file.
private struct ELFReader {
    static let dynamicSection: UInt32 = 6
    static let versionNeedSection: UInt32 = 0x6FFF_FFFE

    struct Section {
        var type: UInt32
        var offset: Int
        var size: Int
        var link: Int
        var info: Int
    }

    let bytes: [UInt8]

    func u16(_ offset: Int) -> Int { offset + 2 <= bytes.count ? Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 : 0 }
    func u32(_ offset: Int) -> UInt32 {
        guard offset + 4 <= bytes.count else { return 0 }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }
    func u64(_ offset: Int) -> UInt64 {
        guard offset + 8 <= bytes.count else { return 0 }
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }

    func sections() throws(ELFDependencies.Failure) -> [Section] {
        let table = Int(u64(0x28)), entrySize = u16(0x3A), count = u16(0x3C)
        guard entrySize >= 64, table + entrySize * count <= bytes.count else {
            throw ELFDependencies.Failure(description: "ELF section table lies outside the file")
        }
        return try (0..<count).map { (index: Int) throws(ELFDependencies.Failure) -> Section in
            let header = table + index * entrySize
            let section = Section(type: u32(header + 4), offset: Int(u64(header + 24)), size: Int(u64(header + 32)),
                                  link: Int(u32(header + 40)), info: Int(u32(header + 44)))
            guard section.type == 8 || section.offset + section.size <= bytes.count else {  // 8: SHT_NOBITS holds no bytes
                throw ELFDependencies.Failure(description: "ELF section \(index) lies outside the file")
            }
            return section
        }
    }

    func section(_ sections: [Section], at index: Int) throws(ELFDependencies.Failure) -> Section {
        guard sections.indices.contains(index) else { throw ELFDependencies.Failure(description: "ELF section link \(index) is out of range") }
        return sections[index]
    }

    func string(in table: Section, at offset: Int) throws(ELFDependencies.Failure) -> String {
        let start = table.offset + offset
        guard offset < table.size, let end = bytes[start..<(table.offset + table.size)].firstIndex(of: 0) else {
            throw ELFDependencies.Failure(description: "ELF string at \(offset) lies outside its table")
        }
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }
}
