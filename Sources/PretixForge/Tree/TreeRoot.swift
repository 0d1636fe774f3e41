import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

// # What pretix-forge does to a tree: the safety rules
//
// A tree is the folder `generate --out` writes and `check --tree`, `build --tree`, `overlay update`
// and `recover` open. It is untrusted input: a branch someone else pushed can hold any file,
// symlink, manifest (`.pretix-forge.json`) or journal (`.pretix-forge.journal`). Whatever it
// holds, pretix-forge keeps these rules; this folder is where they are enforced.
//
// 1. Read-only commands read only. `check --tree` and `build --tree` (which writes only its
//    `--out` folder) never create, change, rename or delete a file of the tree. A journal or
//    staging folder left by an interrupted run is reported with the command that finishes it,
//    `pretix-forge recover --tree DIR`, and never acted on (`TreeSession`).
// 2. Only managed paths, never `.git`. A path the tool writes or removes is relative, has no
//    empty, `.` or `..` component and no NUL, has no component named `.git` in any letter case
//    (a case-insensitive file system opens `.GIT/hooks` as `.git/hooks`), and is not one of the
//    tool's own scratch names (`TreeRoot.problem(with:)`).
// 3. No path leaves the tree through the file system. Every path is opened from the tree's root
//    folder one component at a time with `O_NOFOLLOW`; a component that is a symlink, or that
//    lies on another file system (a mount point), is refused with the path and the fix. The
//    config and overlay a manifest records are read the same way, and an overlay may hold no
//    symlink. The tree folder and an `--out` folder themselves are refused when they are symlinks
//    (and, for a relative path, when any folder on the way is one).
// 4. Removal needs proof. A file is removed only if the manifest lists it, its SHA-256 is the one
//    pretix-forge wrote, and it is a regular file reached as rule 3 says (`removeFile`).
// 5. Recovery trusts only this machine's own runs. A journal or staging folder is acted on only
//    when it carries a seal: an HMAC, under a key kept in this user's state folder outside every
//    tree (`MachineSeal`), over its content and the identity of this tree's folder. Each staged
//    file's digest is checked before it is moved. A journal checked out from git has no valid seal
//    and is refused with the fix (`TreeTransaction`).
// 6. Errors change nothing: every path of a run is checked before its first write (`TreeUpdate`).

/// A folder whose contents pretix-forge reads and writes without ever leaving it: every path
/// below it is resolved from the folder's own descriptor, one component at a time, following no
/// symlink and crossing no mount point (rule 3 above).
public final class TreeRoot {
    /// A path refused, or an operation that failed, with what to do about it.
    public struct Failure: Error, Sendable {
        public var path: String
        public var message: String
        public var fix: String

        public func error(in root: TreeRoot) -> ForgeError {
            ForgeError(message, at: SourceLocation(file: root.join(path)), fix: fix)
        }

        public func diagnostic(in root: TreeRoot) -> Diagnostic {
            Diagnostic(message, at: SourceLocation(file: root.join(path)), fix: fix)
        }
    }

    /// What stands at a path, looked at without following a symlink.
    public enum Entry: Equatable, Sendable {
        case missing
        case file(Data)
        case folder
        case symlink
        /// A device, socket or FIFO.
        case special
    }

    /// The folder as the user named it, for messages.
    public let path: String
    private let descriptor: Int32
    private let device: UInt64
    /// "device:inode" of the folder: what a seal binds a journal or staging folder to.
    let identity: String

    /// The names of pretix-forge's own scratch files inside a tree; never a managed path.
    static let scratchNames: Set<String> = [TreeTransaction.stagingFolder, TreeTransaction.journalFile, TreeTransaction.journalTemporary]

    public init(_ path: String) throws(ForgeError) {
        try Self.refuseSymlinkedComponents(of: path)
        let opened = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard opened >= 0 else {
            throw ForgeError("cannot open the folder: \(String(cString: strerror(errno)))", at: SourceLocation(file: path),
                             fix: "pass an existing folder")
        }
        var info = stat()
        fstat(opened, &info)
        descriptor = opened
        device = UInt64(info.st_dev)
        identity = "\(info.st_dev):\(info.st_ino)"
        self.path = path
    }

    deinit { close(descriptor) }

    /// A path inside the folder, spelled from the folder as the user gave it.
    public func join(_ relative: String) -> String {
        path.hasSuffix("/") ? path + relative : path + "/" + relative
    }

    /// Waits for, then holds until this object goes, a lock on the folder: two pretix-forge runs
    /// on one tree take turns; readers share it. The kernel drops it when the process dies.
    public func lock(exclusive: Bool) {
        let operation = exclusive ? LOCK_EX : LOCK_SH
        if flock(descriptor, operation | LOCK_NB) != 0 {
            StandardStream.error.write("waiting for another pretix-forge run on \(path)\n")
            flock(descriptor, operation)
        }
    }

    // MARK: Paths

    /// Why `relative` can never be a path pretix-forge writes or removes (rule 2), or nil.
    public static func problem(with relative: String) -> String? {
        if relative.isEmpty { return "is an empty path" }
        if relative.utf8.contains(0) { return "contains a NUL byte" }
        if relative.hasPrefix("/") { return "is an absolute path" }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) { return "has an empty, '.' or '..' component" }
        if parts.contains(where: { $0.lowercased() == ".git" }) { return "goes into .git (in some letter case)" }
        if scratchNames.contains(parts[0].lowercased()) { return "is pretix-forge's own scratch space" }
        return nil
    }

    private func validate(_ relative: String) throws(Failure) {
        if let problem = Self.problem(with: relative) {
            throw Failure(path: relative.replacing("\0", with: "\\0"), message: "the path \(problem); pretix-forge never writes or removes such a path",
                          fix: "restore \(TreeManifest.fileName) with `git checkout -- \(TreeManifest.fileName)`, or regenerate into a new folder")
        }
    }

    /// The folder holding the last component of `relative`, open, and that component's name;
    /// nil when a folder on the way does not exist (and `create` is false).
    private func openParent(_ relative: String, create: Bool) throws(Failure) -> (descriptor: Int32, name: String)? {
        let parts = relative.split(separator: "/").map(String.init)
        var current = dup(descriptor)
        var walked: [String] = []
        for part in parts.dropLast() {
            walked.append(part)
            var next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0, errno == ENOENT, create {
                if mkdirat(current, part, 0o755) != 0, errno != EEXIST {
                    let reason = String(cString: strerror(errno))
                    close(current)
                    throw Failure(path: walked.joined(separator: "/"), message: "cannot create the folder: \(reason)",
                                  fix: "check that the tree is writable")
                }
                next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if next < 0 {
                let error = errno
                let kind = kindOf(part, in: current)
                close(current)
                if error == ENOENT { return nil }
                throw refusal(walked.joined(separator: "/"), kind: kind, errorNumber: error)
            }
            close(current)
            current = next
            if let failure = crossesDevice(current, walked) {
                close(current)
                throw failure
            }
        }
        return (current, parts.last ?? "")
    }

    private func kindOf(_ name: String, in folder: Int32) -> Entry {
        var info = stat()
        guard fstatat(folder, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFLNK: return .symlink
        case S_IFDIR: return .folder
        case S_IFREG: return .file(Data())
        default: return .special
        }
    }

    private func refusal(_ path: String, kind: Entry, errorNumber: Int32) -> Failure {
        switch kind {
        case .symlink:
            return Failure(path: path, message: "is a symbolic link; pretix-forge never follows a link out of the tree",
                           fix: "replace the link with a real folder, or remove it (`git rm \(path)`), then run the command again")
        case .file, .special:
            return Failure(path: path, message: "is not a folder, where pretix-forge expects one",
                           fix: "move it away, then run the command again")
        default:
            return Failure(path: path, message: "cannot open the folder: \(String(cString: strerror(errorNumber)))",
                           fix: "check the folder's permissions")
        }
    }

    private func crossesDevice(_ folder: Int32, _ walked: [String]) -> Failure? {
        var info = stat()
        guard fstat(folder, &info) == 0, UInt64(info.st_dev) != device else { return nil }
        let path = walked.joined(separator: "/")
        return Failure(path: path, message: "is a mount point (another file system); pretix-forge stays on the tree's own",
                       fix: "unmount it or move it out of the tree, then run the command again")
    }

    // MARK: Reading

    /// What stands at `relative`, read without following a symlink at any component.
    public func entry(_ relative: String) throws(Failure) -> Entry {
        try validate(relative)
        return try entryOfValidated(relative)
    }

    /// The same for a path chosen by pretix-forge itself (its manifest, scratch files).
    func ownEntry(_ relative: String) throws(Failure) -> Entry {
        try entryOfValidated(relative)
    }

    private func entryOfValidated(_ relative: String) throws(Failure) -> Entry {
        guard let (parent, name) = try openParent(relative, create: false) else { return .missing }
        defer { close(parent) }
        switch kindOf(name, in: parent) {
        case .file:
            return .file(try read(name, in: parent, path: relative))
        case .folder:
            let folder = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard folder >= 0 else { return .folder }
            defer { close(folder) }
            if let failure = crossesDevice(folder, relative.split(separator: "/").map(String.init)) { throw failure }
            return .folder
        case let other:
            return other
        }
    }

    private func read(_ name: String, in parent: Int32, path: String) throws(Failure) -> Data {
        let file = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard file >= 0 else {
            throw Failure(path: path, message: "cannot read the file: \(String(cString: strerror(errno)))", fix: "check its permissions")
        }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw Failure(path: path, message: "is not a regular file", fix: "move it away, then run the command again")
        }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = Glibc.read(file, &buffer, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, message: "cannot read the file: \(String(cString: strerror(errno)))", fix: "check its permissions")
            }
            if count == 0 { return data }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Every regular file below `relative` ("" for the whole folder), and every symlink, by
    /// path; folders named in `skipping`, and folders on another file system, are not entered.
    func walk(_ relative: String = "", skipping: Set<String> = []) -> (files: [String], symlinks: [String]) {
        var result: (files: [String], symlinks: [String]) = ([], [])
        let start: Int32
        if relative.isEmpty {
            start = dup(descriptor)
        } else {
            guard let (parent, name) = try? openParent(relative, create: false) else { return result }
            start = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(parent)
        }
        guard start >= 0 else { return result }
        walk(start, prefix: "", skipping: skipping, into: &result)
        return (result.files.sorted(), result.symlinks.sorted())
    }

    private func walk(_ folder: Int32, prefix: String, skipping: Set<String>, into result: inout (files: [String], symlinks: [String])) {
        for name in Self.names(in: folder) {
            let path = prefix + name
            switch kindOf(name, in: folder) {
            case .file: result.files.append(path)
            case .symlink: result.symlinks.append(path)
            case .folder where !skipping.contains(name):
                let child = openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else { continue }
                if crossesDevice(child, []) != nil { close(child); continue }
                walk(child, prefix: path + "/", skipping: skipping, into: &result)
            default: continue
            }
        }
        close(folder)
    }

    /// The entries of an open folder, without "." and ".."; the descriptor stays open.
    private static func names(in folder: Int32) -> [String] {
        let copy = dup(folder)
        guard copy >= 0, let stream = fdopendir(copy) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    // MARK: Writing

    /// Writes `data` to a new or replaced regular file at `relative`, creating the folders on the
    /// way; `durable` fsyncs it. A symlink standing there is refused, never written through.
    func writeFile(_ relative: String, _ data: Data, durable: Bool) throws(Failure) {
        guard let (parent, name) = try openParent(relative, create: true) else { return }
        defer { close(parent) }
        let file = openat(parent, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard file >= 0 else {
            let kind = kindOf(name, in: parent)
            if kind == .symlink { throw refusal(relative, kind: kind, errorNumber: errno) }
            throw Failure(path: relative, message: "cannot write the file: \(String(cString: strerror(errno)))",
                          fix: "check that the tree is writable and the disk has space, then run the command again")
        }
        defer { close(file) }
        guard POSIXFile.writeAll(data, to: file), !durable || fsync(file) == 0 else {
            throw Failure(path: relative, message: "cannot write the file: \(String(cString: strerror(errno)))",
                          fix: "check that the disk has space, then run the command again")
        }
    }

    /// Writes a file so a reader sees the old content or the new, never a mix: a temporary file
    /// beside it, renamed over it.
    public func replaceFile(_ relative: String, _ data: Data) throws(Failure) {
        let temporary = relative + ".pretix-forge-\(getpid()).tmp"
        try writeFile(temporary, data, durable: true)
        do {
            try rename(temporary, to: relative)
        } catch {
            _ = try? removeOwnFile(temporary)
            throw error
        }
    }

    /// Moves `source` to `target` (both below this folder), creating the target's folders.
    func rename(_ source: String, to target: String) throws(Failure) {
        guard let (sourceParent, sourceName) = try openParent(source, create: false) else {
            throw Failure(path: source, message: "has disappeared", fix: "run the command again")
        }
        defer { close(sourceParent) }
        guard let (targetParent, targetName) = try openParent(target, create: true) else { return }
        defer { close(targetParent) }
        guard renameat(sourceParent, sourceName, targetParent, targetName) == 0 else {
            throw Failure(path: target, message: "cannot move a new file into place: \(String(cString: strerror(errno)))",
                          fix: "check that the tree is writable and that no folder stands where the file goes, then run the command again")
        }
    }

    func makeFolder(_ relative: String) throws(Failure) {
        guard let (parent, name) = try openParent(relative, create: true) else { return }
        defer { close(parent) }
        guard mkdirat(parent, name, 0o755) == 0 || errno == EEXIST else {
            throw Failure(path: relative, message: "cannot create the folder: \(String(cString: strerror(errno)))",
                          fix: "check that the tree is writable")
        }
        if kindOf(name, in: parent) != .folder { throw refusal(relative, kind: kindOf(name, in: parent), errorNumber: ENOTDIR) }
    }

    // MARK: Removing

    /// Removes the regular file at `relative` if its SHA-256 is `sha256` (rule 4). False when
    /// there is nothing to remove: no such file, another content, or not a regular file.
    func removeFile(_ relative: String, sha256: String) throws(Failure) -> Bool {
        guard let (parent, name) = try openParent(relative, create: false) else { return false }
        defer { close(parent) }
        guard case .file = kindOf(name, in: parent), Digest.sha256(try read(name, in: parent, path: relative)).hexString == sha256 else {
            return false
        }
        guard unlinkat(parent, name, 0) == 0 || errno == ENOENT else {
            throw Failure(path: relative, message: "cannot remove the file: \(String(cString: strerror(errno)))",
                          fix: "check the folder's permissions, then run the command again to finish")
        }
        return true
    }

    /// Removes a file pretix-forge itself just wrote (a temporary file, its journal).
    @discardableResult
    func removeOwnFile(_ relative: String) throws(Failure) -> Bool {
        guard let (parent, name) = try openParent(relative, create: false) else { return false }
        defer { close(parent) }
        guard unlinkat(parent, name, 0) == 0 else {
            if errno == ENOENT { return false }
            throw Failure(path: relative, message: "cannot remove the file: \(String(cString: strerror(errno)))",
                          fix: "check the folder's permissions")
        }
        return true
    }

    /// Folders that a removal left empty go too, from `relative` upwards; the root never does.
    func removeEmptyFolders(from relative: String) {
        var parts = relative.split(separator: "/").map(String.init)
        while !parts.isEmpty {
            guard let (parent, name) = try? openParent(parts.joined(separator: "/"), create: false) else { return }
            let removed = unlinkat(parent, name, AT_REMOVEDIR) == 0
            close(parent)
            guard removed else { return }
            parts.removeLast()
        }
    }

    /// Removes a scratch folder pretix-forge wrote and has proven to be its own (a sealed staging
    /// folder), with everything in it; a link inside is removed as a link, never followed.
    func removeScratchFolder(_ relative: String) throws(Failure) {
        guard let (parent, name) = try openParent(relative, create: false) else { return }
        defer { close(parent) }
        guard kindOf(name, in: parent) == .folder else {
            throw refusal(relative, kind: kindOf(name, in: parent), errorNumber: ENOTDIR)
        }
        try Self.removeContents(of: name, in: parent, path: relative)
        guard unlinkat(parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT else {
            throw Failure(path: relative, message: "cannot remove the folder: \(String(cString: strerror(errno)))",
                          fix: "check its permissions")
        }
    }

    private static func removeContents(of name: String, in parent: Int32, path: String) throws(Failure) {
        let folder = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard folder >= 0 else { return }
        defer { close(folder) }
        for child in names(in: folder) {
            var info = stat()
            guard fstatat(folder, child, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                try removeContents(of: child, in: folder, path: path + "/" + child)
                if unlinkat(folder, child, AT_REMOVEDIR) != 0 && errno != ENOENT {
                    throw Failure(path: path + "/" + child, message: "cannot remove the folder: \(String(cString: strerror(errno)))",
                                  fix: "check its permissions")
                }
            } else if unlinkat(folder, child, 0) != 0 && errno != ENOENT {
                throw Failure(path: path + "/" + child, message: "cannot remove the file: \(String(cString: strerror(errno)))",
                              fix: "check its permissions")
            }
        }
    }

    // MARK: Durability

    /// fsyncs a folder below this one ("" for this one), so renames and removals in it last.
    func syncFolder(_ relative: String) {
        let folder: Int32
        if relative.isEmpty {
            folder = dup(descriptor)
        } else {
            guard let (parent, name) = try? openParent(relative, create: false) else { return }
            folder = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            close(parent)
        }
        guard folder >= 0 else { return }
        fsync(folder)
        close(folder)
    }

    /// "device:inode" of a folder below this one, nil when there is none.
    func identity(of relative: String) -> String? {
        guard let (parent, name) = try? openParent(relative, create: false) else { return nil }
        defer { close(parent) }
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFDIR else { return nil }
        return "\(info.st_dev):\(info.st_ino)"
    }

    // MARK: Folders named on the command line

    /// Refuses a folder path that is a symlink, or, when relative, runs through one: a tree can
    /// hold a link named like the folder a habitual `--out dist` or the default
    /// `build/NAME-VERSION` writes to. An absolute path is the user's own choice up to its last
    /// component.
    public static func refuseSymlinkedComponents(of path: String) throws(ForgeError) {
        let parts = path.split(separator: "/").map(String.init)
        var prefixes: [String] = []
        if path.hasPrefix("/") {
            prefixes = ["/" + parts.joined(separator: "/")]  // lstat of "link/" would follow the link
        } else {
            for index in parts.indices { prefixes.append(parts[0...index].joined(separator: "/")) }
        }
        for prefix in prefixes {
            var info = stat()
            guard lstat(prefix, &info) == 0 else { return }  // nothing exists from here on
            if info.st_mode & S_IFMT == S_IFLNK {
                throw ForgeError("is a symbolic link; pretix-forge does not write or read a tree through a link", at: SourceLocation(file: prefix),
                                 fix: "pass the folder the link points to, if it is really yours, or remove the link")
            }
        }
    }
}
