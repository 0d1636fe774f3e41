import CSupport
import FoundationEssentials
import Glibc
import Synchronization

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
        try refuseFile(at: directory)
        try publish(files, to: directory, mode: .update)
    }

    /// `update` writes into a folder; a file of that name is the user's mistake, not ours to replace.
    private static func refuseFile(at directory: String) throws(ForgeError) {
        var isDirectory = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory {
            throw ForgeError("exists and is not a folder", at: SourceLocation(file: directory), fix: "choose a folder for --out")
        }
    }

    private enum Mode: Sendable {
        /// The folder must not exist, or be empty.
        case create
        /// The folder is exchanged whole for exactly the new files.
        case replace
        /// The folder is exchanged for a linked copy of itself with the new files written in.
        case update
    }

    private static func publish(_ files: [String: Data], to directory: String, mode: Mode) throws(ForgeError) {
        let staging = try Staging(directory, mode: mode)
        do {
            for (path, data) in files { try staging.write(data, to: path) }
        } catch {
            staging.discard()
            throw error
        }
        try staging.swapIn()
    }

    /// An update of `directory` (as `update` makes it) written file by file while other work
    /// goes on, then swapped in whole: a batch of variants stages each archive as it is built
    /// instead of holding them all in memory. Nothing is touched on disk before the first
    /// `write` (a batch whose variants all fail leaves no trace), and the folder itself not
    /// before `commit`.
    final class StagedUpdate: Sendable {
        private let directory: String
        /// The staging folder once the first write made it, or why it could not be made.
        private let staging = Mutex<Result<Staging, ForgeError>?>(nil)
        /// Whether the folder for files written aside has been made (by the first such write).
        private let asideMade = Mutex(false)

        init(_ directory: String) { self.directory = directory }

        /// Why the staging folder could not be made, once a write has tried.
        var setupError: ForgeError? {
            guard case .failure(let error)? = staging.withLock({ $0 }) else { return nil }
            return error
        }

        /// Writes `data` at `path` inside the staged folder; safe from several threads for distinct paths.
        func write(_ data: Data, sha256: String? = nil, to path: String) throws(ForgeError) {
            try made().write(data, sha256: sha256, to: path)
        }

        /// Writes `data` at `path` in a folder of the staging that no file of the output can be
        /// (made fresh), to be published by `publishAside` or dropped at `commit`; `sha256` is its digest.
        func writeAside(_ data: Data, sha256: String, to path: String) throws(ForgeError) {
            let staging = try made()
            try asideMade.withLock { made throws(ForgeError) in
                if !made { try staging.makeAside() }
                made = true
            }
            try staging.write(data, sha256: sha256, to: "\(staging.aside)/\(path)")
        }

        /// Moves a file written aside to `path` in the output.
        func publishAside(_ asidePath: String, to path: String) throws(ForgeError) {
            let staging = try made()
            try staging.move("\(staging.aside)/\(asidePath)", to: path)
        }

        /// Swaps the staged folder in, without what was written aside and not published.
        func commit() throws(ForgeError) {
            let staging = try made()
            if asideMade.withLock({ $0 }) { staging.remove(staging.aside) }
            try staging.swapIn()
        }

        /// Leaves the folder as it was.
        func discard() {
            if case .success(let made)? = staging.withLock({ $0 }) { made.discard() }
        }

        private func made() throws(ForgeError) -> Staging {
            let result = staging.withLock { state -> Result<Staging, ForgeError> in
                if let state { return state }
                let made = Result { () throws(ForgeError) -> Staging in
                    try refuseFile(at: directory)
                    return try Staging(directory, mode: .update)
                }
                state = made
                return made
            }
            return try result.get()
        }
    }

    /// A sibling folder that becomes `directory` with one rename (or exchange).
    private struct Staging: Sendable {
        let url: URL
        let target: URL
        let mode: Mode
        let location: SourceLocation
        /// In an update, which files of the output pretix-forge wrote (`OutputRecord`).
        private(set) var ownership: OutputRecord?
        /// StagedUpdate's folder for files written aside; makeAside refuses to go on when the
        /// copied output holds something of that name.
        var aside: String { ".forge-aside-\(getpid())" }

        init(_ directory: String, mode: Mode) throws(ForgeError) {
            // A tree can hold a link named like the folder a habitual `--out dist` writes to.
            try TreeRoot.refuseSymlinkedComponents(of: directory)
            let fileManager = FileManager.default
            target = URL(fileURLWithPath: directory).standardizedFileURL
            self.mode = mode
            let parent = target.deletingLastPathComponent()
            let stagingPrefix = ".\(target.lastPathComponent).forge-staging-"
            location = SourceLocation(file: target.path)
            do {
                try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
            } catch {
                if let file = Self.fileOnTheWay(to: parent) {
                    throw ForgeError("\(file.path) is a file, so no folder can be made inside it", at: location,
                                     fix: "choose an output folder that is not inside a file")
                }
                throw ForgeError("cannot write the output: \(describe(error))", at: location,
                                 fix: "check that the folder is writable and the disk has space")
            }
            let seal = try? MachineSeal.load()
            let parentRoot = try? TreeRoot(parent.path)
            if let seal, let parentRoot { removeAbandonedStaging(in: parentRoot, prefix: stagingPrefix, seal: seal) }
            url = parent.appendingPathComponent(stagingName(prefix: stagingPrefix, pid: getpid(), parent: parentRoot, seal: seal))
            do {
                try? fileManager.removeItem(at: url)
                try fileManager.createDirectory(at: url, withIntermediateDirectories: true)
            } catch {
                discard()
                throw writeFailure(error)
            }
            if mode == .update, fileManager.fileExists(atPath: target.path) {
                do {
                    try Self.link(contentsOf: target.path, into: url.path)
                } catch {
                    discard()
                    throw error
                }
            }
            do {
                ownership = mode == .update ? try OutputRecord(staged: url.path, folder: target.path, seal: seal) : nil
            } catch {
                discard()
                throw error
            }
        }

        /// Fills the staging folder with hard links to everything the output folder holds. The
        /// user's files there (earlier releases, notes, a named pipe) are the same files after the
        /// exchange: never opened, read or copied, their inodes, times and other links intact.
        private static func link(contentsOf source: String, into destination: String) throws(ForgeError) {
            let names: [String]
            do {
                names = try FileManager.default.contentsOfDirectory(atPath: source)
            } catch {
                throw ForgeError("cannot read the output folder: \(describe(error))", at: SourceLocation(file: source))
            }
            for name in names {
                let from = "\(source)/\(name)", to = "\(destination)/\(name)"
                var info = stat()
                guard lstat(from, &info) == 0 else { throw linkFailure(from) }
                if info.st_mode & S_IFMT == S_IFDIR {
                    guard mkdir(to, info.st_mode & 0o7777) == 0 else { throw linkFailure(to) }
                    try link(contentsOf: from, into: to)
                } else if linkat(AT_FDCWD, from, AT_FDCWD, to, 0) != 0 {
                    throw linkFailure(from)
                }
            }
        }

        private static func linkFailure(_ path: String) -> ForgeError {
            ForgeError("cannot stage the output folder: \(String(cString: strerror(errno)))", at: SourceLocation(file: path),
                       fix: "write to a folder on a file system with hard links (--out), or move this file away")
        }

        /// The nearest existing component of `folder` that is not a folder, if any.
        private static func fileOnTheWay(to folder: URL) -> URL? {
            var candidate = folder
            while candidate.path != "/" {
                var isDirectory = false
                if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory) {
                    return isDirectory ? nil : candidate
                }
                candidate = candidate.deletingLastPathComponent()
            }
            return nil
        }

        /// In an update, a file of the output may be replaced only when pretix-forge wrote it
        /// (`OutputRecord.claim`); files written aside (in a subfolder) are this run's own. A file
        /// that already holds exactly these bytes, as a rebuild of the same inputs gives, is kept
        /// as it is: its inode and times stay, and the disk is spared rewriting it.
        func write(_ data: Data, sha256: String? = nil, to path: String) throws(ForgeError) {
            guard let ownership else { return try create(data, at: path) }
            let digest = sha256 ?? Digest.sha256(data).hexString
            let unchanged = path.contains("/") ? false : try ownership.claim(path, in: url.path, replacingWith: digest)
            if !unchanged { try create(data, at: path) }
            ownership.wrote(path, digest: digest, changed: !unchanged)
        }

        private func create(_ data: Data, at path: String) throws(ForgeError) {
            let file = url.appendingPathComponent(path)
            do {
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                // The name may be a link to the output's own file: writing through it would change
                // that file before the exchange, and any other link to it. So the name is unlinked
                // and the file made new (O_EXCL). Not fsynced, as no build tool does: archives a
                // crash cut short are rebuilt by the next run, and SHA256SUMS shows them; waiting
                // on the disk was a sixth of a build.
                guard unlink(file.path) == 0 || errno == ENOENT else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                let descriptor = open(file.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
                guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
                defer { close(descriptor) }
                guard POSIXFile.writeAll(data, to: descriptor) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            } catch {
                throw writeFailure(error)
            }
        }

        /// Made with mkdir, which fails if the copied output holds anything of that name.
        func makeAside() throws(ForgeError) {
            guard mkdir(url.appendingPathComponent(aside).path, 0o755) == 0 else {
                let reason = String(cString: strerror(errno))
                discard()
                throw ForgeError("cannot stage the output: \(reason)", at: location,
                                 fix: "remove \(aside) from the output folder, which pretix-forge did not write")
            }
        }

        func move(_ from: String, to: String) throws(ForgeError) {
            if let ownership { try ownership.claim(to, in: url.path, replacingWith: ownership.digest(ofWritten: from) ?? "") }
            guard rename(url.appendingPathComponent(from).path, url.appendingPathComponent(to).path) == 0 else {
                throw ForgeError("cannot write the output: \(String(cString: strerror(errno)))", at: location)
            }
            ownership?.moved(from, to: to)
        }

        func remove(_ path: String) {
            try? FileManager.default.removeItem(at: url.appendingPathComponent(path))
        }

        func discard() {
            try? FileManager.default.removeItem(at: url)
        }

        /// A new tree is renamed into place, which fails rather than replace a folder that
        /// appeared meanwhile with contents; dist/ is exchanged whole with its updated copy.
        func swapIn() throws(ForgeError) {
            if let ownership, let record = ownership.sealedData(present: { name in var info = stat(); return lstat("\(url.path)/\(name)", &info) == 0 }) {
                // Nothing new and the same record: the folder stays as it was, not exchanged for
                // an equal copy (a shell inside it keeps a folder that exists).
                if ownership.leavesFolderAsItWas(with: record) {
                    discard()
                    return
                }
                do {
                    try create(record, at: OutputRecord.fileName)
                } catch {
                    discard()
                    throw error
                }
            }
            if mode != .create, FileManager.default.fileExists(atPath: target.path) {
                guard forge_exchange_paths(url.path, target.path) == 0 else {
                    let reason = String(cString: strerror(errno))
                    discard()
                    throw ForgeError("cannot replace the output folder: \(reason)", at: location)
                }
            } else if rename(url.path, target.path) != 0 {
                let reason = String(cString: strerror(errno))
                discard()
                throw ForgeError("cannot create the output folder: \(reason)", at: location)
            }
            // After the exchange the staging path holds the previous output.
            discard()
        }

        private func writeFailure(_ error: any Error) -> ForgeError {
            ForgeError("cannot write the output: \(describe(error))", at: location,
                       fix: "check that the folder is writable and the disk has space")
        }
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
