import FoundationEssentials

/// A config a tree holds, the one its manifest records: the files it names (license_file, logo)
/// must be the tree's too. A tree is untrusted input, and its config must not make `check --tree`
/// print, or a build ship, a file from elsewhere on the machine.
public struct ConfigConfinement: Sendable, Equatable {
    public let treeDirectory: String
    /// The config's folder relative to the tree; "" for the tree's top.
    public let configFolder: String

    public init(treeDirectory: String, configFolder: String) {
        self.treeDirectory = treeDirectory
        self.configFolder = configFolder
    }

    enum Read: Equatable {
        case data(Data)
        case folder
        /// Not there; for a config outside a tree, also unreadable.
        case missing
        /// A symbolic link, device, socket or FIFO: never read.
        case notPlain
        case outside
    }

    /// `path` as the config names it (relative to the config's folder), read inside the tree
    /// without following a link.
    func read(_ path: String) -> Read {
        guard !path.hasPrefix("/"), let relative = Self.resolve(path, in: configFolder),
              let root = try? TreeRoot(treeDirectory), let entry = try? root.entry(relative) else { return .outside }
        switch entry {
        case .file(let data): return .data(data)
        case .folder: return .folder
        case .missing: return .missing
        case .symlink, .special: return .notPlain
        }
    }

    /// `folder/path` with "." and ".." resolved; nil when it climbs out of the tree.
    static func resolve(_ path: String, in folder: String) -> String? {
        var parts = folder.split(separator: "/")
        for part in path.split(separator: "/") where part != "." {
            if part == ".." {
                guard parts.popLast() != nil else { return nil }
            } else {
                parts.append(part)
            }
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }
}
