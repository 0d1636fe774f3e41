import CSupport
import FoundationEssentials
import Glibc

/// Writes outputs so a reader sees the old state or the new one, never a mix: everything is
/// staged in a sibling folder, then swapped in with one rename.
public enum AtomicOutput {
    /// Creates `directory` holding exactly `files`: it appears whole, or not at all. Folders
    /// that exist already are written in place by `TreeTransaction`, which touches only the
    /// files the tree's manifest lists.
    public static func createDirectory(_ directory: String, with files: [String: Data]) throws(ForgeError) {
        try publish(files, to: directory, mode: .create)
    }

    /// Replaces `directory` with exactly `files` (the demo's screenshots). An existing folder is
    /// replaced only when it is empty or holds `marker`, a file every such output has: a
    /// mistyped path must never wipe a folder of the user's.
    public static func replaceDirectory(_ directory: String, with files: [String: Data], marker: String) throws(ForgeError) {
        var isDirectory = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory else {
                throw ForgeError("exists and is not a folder", at: SourceLocation(file: directory), fix: "choose a new or empty folder")
            }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            guard contents.isEmpty || contents.contains(marker) else {
                throw ForgeError("refusing to replace a folder that pretix-forge did not write (it has no \(marker))",
                                 at: SourceLocation(file: directory), fix: "choose a new or empty folder")
            }
        }
        try publish(files, to: directory, mode: .replace)
    }

    /// Writes `files` into `directory`, keeping files it holds that are not being replaced
    /// (earlier versions in dist/, say).
    public static func update(_ directory: String, with files: [String: Data]) throws(ForgeError) {
        var isDirectory = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory {
            throw ForgeError("exists and is not a folder", at: SourceLocation(file: directory), fix: "choose a folder for --out")
        }
        try publish(files, to: directory, mode: .update)
    }

    private enum Mode {
        /// The folder must not exist, or be empty.
        case create
        /// The folder is exchanged whole for exactly the new files.
        case replace
        /// The folder is exchanged for a copy of itself with the new files written in.
        case update
    }

    private static func publish(_ files: [String: Data], to directory: String, mode: Mode) throws(ForgeError) {
        // A tree can hold a link named like the folder a habitual `--out dist` writes to.
        try TreeRoot.refuseSymlinkedComponents(of: directory)
        let fileManager = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let stagingPrefix = ".\(target.lastPathComponent).forge-staging-"
        let location = SourceLocation(file: target.path)
        do {
            try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw ForgeError("cannot write the output: \(describe(error))", at: location,
                             fix: "check that the folder is writable and the disk has space")
        }
        let seal = try? MachineSeal.load()
        let parentRoot = try? TreeRoot(parent.path)
        if let seal, let parentRoot { removeAbandonedStaging(in: parentRoot, prefix: stagingPrefix, seal: seal) }
        let staging = parent.appendingPathComponent(stagingName(prefix: stagingPrefix, pid: getpid(), parent: parentRoot, seal: seal))
        do {
            try? fileManager.removeItem(at: staging)
            if mode == .update, fileManager.fileExists(atPath: target.path) {
                try fileManager.copyItem(at: target, to: staging)
            } else {
                try fileManager.createDirectory(at: staging, withIntermediateDirectories: true)
            }
            for (path, data) in files {
                let url = staging.appendingPathComponent(path)
                try fileManager.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: url)
            }
        } catch {
            try? fileManager.removeItem(at: staging)
            throw ForgeError("cannot write the output: \(describe(error))", at: location,
                             fix: "check that the folder is writable and the disk has space")
        }
        // A new tree is renamed into place, which fails rather than replace a folder that
        // appeared meanwhile with contents; dist/ is exchanged whole with its updated copy.
        if mode != .create, fileManager.fileExists(atPath: target.path) {
            guard forge_exchange_paths(staging.path, target.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fileManager.removeItem(at: staging)
                throw ForgeError("cannot replace the output folder: \(reason)", at: location)
            }
        } else if rename(staging.path, target.path) != 0 {
            let reason = String(cString: strerror(errno))
            try? fileManager.removeItem(at: staging)
            throw ForgeError("cannot create the output folder: \(reason)", at: location)
        }
        // After the exchange the staging path holds the previous output.
        try? fileManager.removeItem(at: staging)
    }

    /// `PREFIX<pid>-<seal>`: the seal (over the parent folder's identity, the prefix and the pid,
    /// under this machine's key) proves a staging folder this machine's own, so a folder of that
    /// name checked out from git is never taken for one and removed.
    private static func stagingName(prefix: String, pid: Int32, parent: TreeRoot?, seal: MachineSeal?) -> String {
        guard let seal, let parent else { return prefix + String(pid) }
        let tag = seal.seal(["pretix-forge output staging", parent.identity, prefix, String(pid)]).prefix(16)
        return "\(prefix)\(pid)-\(tag)"
    }

    /// A build killed mid-way leaves its staging folder behind; remove those that carry this
    /// machine's seal and whose process is gone.
    private static func removeAbandonedStaging(in parent: TreeRoot, prefix: String, seal: MachineSeal) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            let fields = name.dropFirst(prefix.count).split(separator: "-")
            guard fields.count == 2, let pid = Int32(fields[0]), pid != getpid(),
                  name == stagingName(prefix: prefix, pid: pid, parent: parent, seal: seal),
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? parent.removeScratchFolder(name)
        }
    }
}
