import FoundationEssentials

/// `.pretix-forge.json`, committed with the tree: which files pretix-forge manages (and their
/// SHA-256 when it last wrote them), the forge version, the digests of the config and the
/// overlay, where those were found, and for each built-in template an overlay replaces the
/// text it replaced, so `overlay update` has the old base of its 3-way merge.
///
/// `generate` touches only the files listed here (and those it adds); everything else in the
/// folder — `.git/`, a CHANGELOG, docs — is the maintainer's.
public struct TreeManifest: Sendable, Equatable {
    public static let fileName = ".pretix-forge.json"
    static let format = 1
    static let comment = "Written by pretix-forge: the files it manages in this tree. Do not edit; run pretix-forge generate."

    /// Where an input (config, overlay) came from, as far as the tree can name it.
    public enum Origin: Sendable, Equatable {
        /// The stock config compiled into pretix-forge.
        case embedded
        /// A path relative to the tree, so CI finds it in a checkout.
        case inTree(String)
        /// Given from outside the tree: later runs must name it again.
        case outsideTree
        /// Not recorded: the manifest inside an sdist describes files, not a working copy.
        case unrecorded
    }

    public struct Input: Sendable, Equatable {
        public var digest: String
        public var origin: Origin
    }

    /// The built-in template an overlay file was written against.
    public struct Base: Sendable, Equatable {
        public var sha256: String
        /// Nil for templates that are not UTF-8 text (those cannot be merged).
        public var text: String?
        public var forgeVersion: String

        init(_ data: Data, forgeVersion: String) {
            sha256 = Digest.sha256(data).hexString
            text = String(data: data, encoding: .utf8)
            self.forgeVersion = forgeVersion
        }

        init(sha256: String, text: String?, forgeVersion: String) {
            self.sha256 = sha256
            self.text = text
            self.forgeVersion = forgeVersion
        }
    }

    public struct OverlayRecord: Sendable, Equatable {
        public var input: Input
        /// Template path → the built-in it replaces.
        public var bases: [String: Base]
        public var added: [String]
    }

    public var forgeVersion: String
    public var config: Input
    public var overlay: OverlayRecord?
    /// Managed path → SHA-256 (hex) of the content pretix-forge wrote.
    public var files: [String: String]

    public var data: Data { CanonicalJSON.encode(json) }

    var json: CanonicalJSON.Value {
        var root: [String: CanonicalJSON.Value] = [
            "_comment": .string(Self.comment),
            "format": .int(Self.format),
            "forge_version": .string(forgeVersion),
            "config": Self.encode(config, pathKey: "path"),
            "files": .object(files.mapValues { .string($0) }),
            "overlay": .null,
        ]
        if let overlay {
            var members = Self.encode(overlay.input, pathKey: "folder").object ?? [:]
            if overlay.input.origin != .unrecorded {
                members["replaces"] = .object(overlay.bases.mapValues { base in
                    .object(["sha256": .string(base.sha256), "text": base.text.map { .string($0) } ?? .null,
                             "forge_version": .string(base.forgeVersion)])
                })
                members["adds"] = .array(overlay.added.sorted().map { .string($0) })
            }
            root["overlay"] = .object(members)
        }
        return .object(root)
    }

    private static func encode(_ input: Input, pathKey: String) -> CanonicalJSON.Value {
        var members: [String: CanonicalJSON.Value] = ["sha256": .string(input.digest)]
        switch input.origin {
        case .embedded: members["from"] = .string("embedded")
        case .inTree(let path): members["from"] = .string("tree"); members[pathKey] = .string(path)
        case .outsideTree: members["from"] = .string("outside")
        case .unrecorded: break
        }
        return .object(members)
    }

    // MARK: Reading

    /// The manifest in the tree, nil when it has none; a link or folder in its place is refused.
    public static func read(in root: TreeRoot) throws(ForgeError) -> TreeManifest? {
        let entry: TreeRoot.Entry
        do { entry = try root.ownEntry(fileName) } catch { throw error.error(in: root) }
        switch entry {
        case .missing: return nil
        case .file(let data): return try decode(data, file: root.join(fileName))
        default:
            throw ForgeError("is not a regular file (pretix-forge reads no manifest through a link)", at: SourceLocation(file: root.join(fileName)),
                             fix: "restore it with `git checkout -- \(fileName)`, or regenerate with --adopt")
        }
    }

    public static func decode(_ data: Data, file: String) throws(ForgeError) -> TreeManifest {
        let restore = "restore it with `git checkout -- \(fileName)`, or regenerate with --adopt"
        func broken(_ why: String) -> ForgeError {
            ForgeError("is not a pretix-forge manifest: \(why)", at: SourceLocation(file: file), fix: restore)
        }
        guard let root = CanonicalJSON.decode(data)?.object else { throw broken("not a JSON object") }
        guard let format = root["format"]?.int else { throw broken("no \"format\"") }
        guard format <= Self.format else {
            throw ForgeError("was written by a newer pretix-forge (manifest format \(format))", at: SourceLocation(file: file),
                             fix: "use the pretix-forge version named in its \"forge_version\"")
        }
        guard let version = root["forge_version"]?.string else { throw broken("no \"forge_version\"") }
        guard let config = root["config"].flatMap({ input($0, pathKey: "path") }) else { throw broken("\"config\" is malformed") }
        guard let fileMembers = root["files"]?.object else { throw broken("no \"files\"") }
        var files: [String: String] = [:]
        for (path, value) in fileMembers {
            if let problem = TreeRoot.problem(with: path) {
                throw broken("the managed path '\(path.replacing("\0", with: "\\0"))' \(problem)")
            }
            guard let digest = value.string, digest.count == 64 else { throw broken("'\(path)' has no SHA-256") }
            files[path] = digest
        }
        var overlay: OverlayRecord?
        if let value = root["overlay"], !value.isNull {
            guard let members = value.object, let input = input(value, pathKey: "folder") else { throw broken("\"overlay\" is malformed") }
            var bases: [String: Base] = [:]
            for (path, entry) in members["replaces"]?.object ?? [:] {
                guard let fields = entry.object, let sha = fields["sha256"]?.string, let from = fields["forge_version"]?.string else {
                    throw broken("the overlay base of '\(path)' is malformed")
                }
                bases[path] = Base(sha256: sha, text: fields["text"]?.string, forgeVersion: from)
            }
            let added = (members["adds"]?.array ?? []).compactMap(\.string)
            overlay = OverlayRecord(input: input, bases: bases, added: added)
        }
        return TreeManifest(forgeVersion: version, config: config, overlay: overlay, files: files)
    }

    private static func input(_ value: CanonicalJSON.Value, pathKey: String) -> Input? {
        guard let members = value.object, let digest = members["sha256"]?.string else { return nil }
        switch members["from"]?.string {
        case "embedded": return Input(digest: digest, origin: .embedded)
        case "outside": return Input(digest: digest, origin: .outsideTree)
        case "tree":
            guard let path = members[pathKey]?.string, TreeRoot.problem(with: path) == nil else { return nil }
            return Input(digest: digest, origin: .inTree(path))
        case nil: return Input(digest: digest, origin: .unrecorded)
        default: return nil
        }
    }
}
