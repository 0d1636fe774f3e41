import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Rewrites the managed files of an existing tree in place, with a write-ahead journal, so that
/// a crash or SIGKILL never leaves a mix of old and new managed files behind once the next
/// pretix-forge command has looked at the tree.
///
/// 1. Every new file is written into `.pretix-forge.staging/` inside the tree and fsynced;
///    nothing else in the tree has changed yet. A run killed here is rolled back: the next
///    command deletes the staging folder.
/// 2. `.pretix-forge.journal` (what to install, what to remove) is written to a temporary name,
///    fsynced and renamed into place: the commit point.
/// 3. Files are removed and the staged files renamed over their targets, the manifest last;
///    then the staging folder and the journal are deleted. A run killed here is rolled forward
///    by the next command (generate, check, build --tree, overlay update), which redoes step 3.
///
/// One folder rename cannot swap a few files inside a git work tree, so between a kill in step 3
/// and the next command the files on disk are mixed; no pretix-forge command ever reads or
/// reports them in that state. Only the listed paths are touched: `.git/` and every file the
/// manifest does not list stay as they are. Concurrent runs on one tree are serialised by an
/// advisory lock on the folder.
public enum TreeTransaction {
    public static let stagingFolder = ".pretix-forge.staging"
    public static let journalFile = ".pretix-forge.journal"
    static let journalTemporary = ".pretix-forge.journal.tmp"

    public struct Change: Sendable {
        /// Path → new content. The manifest, if present, is installed last.
        public var writes: [String: Data]
        /// Path → SHA-256 the file must still have to be removed.
        public var removals: [String: String]

        public init(writes: [String: Data], removals: [String: String]) {
            self.writes = writes
            self.removals = removals
        }

        public var isEmpty: Bool { writes.isEmpty && removals.isEmpty }
    }

    public enum Recovery: Sendable, Equatable {
        /// Killed before the journal existed: the staging folder was deleted, nothing else changed.
        case rolledBack
        /// Killed after the commit point: the interrupted run's files were put in place.
        case completed
    }

    // MARK: Recovery

    /// Completes or undoes a run that was killed while writing `directory`.
    public static func recover(in directory: String) throws(ForgeError) -> Recovery? {
        let root = URL(fileURLWithPath: directory)
        let journal = root.appendingPathComponent(journalFile)
        unlink(root.appendingPathComponent(journalTemporary).path)
        if let data = FileManager.default.contents(atPath: journal.path) {
            guard let entries = Journal(data) else {
                throw ForgeError("the journal of an interrupted pretix-forge run cannot be read", at: SourceLocation(file: journal.path),
                                 fix: "inspect \(stagingFolder)/ and the files it lists, then delete \(journalFile) and \(stagingFolder)/")
            }
            try rollForward(entries, in: root)
            return .completed
        }
        let staging = root.appendingPathComponent(stagingFolder)
        guard FileManager.default.fileExists(atPath: staging.path) else { return nil }
        try remove(staging)
        return .rolledBack
    }

    // MARK: Commit

    public static func commit(_ change: Change, in directory: String) throws(ForgeError) {
        guard !change.isEmpty else { return }
        let root = URL(fileURLWithPath: directory)
        let staging = root.appendingPathComponent(stagingFolder)
        try remove(staging)
        var folders: Set<String> = [staging.path]
        for (path, data) in change.writes.sorted(by: { $0.key < $1.key }) {
            let url = staging.appendingPathComponent(path)
            try makeFolders(url.deletingLastPathComponent())
            folders.insert(url.deletingLastPathComponent().path)
            try writeDurably(data, to: url)
            TestHook.pause()
        }
        for folder in folders { syncFolder(folder) }
        let installOrder = change.writes.keys.sorted().filter { $0 != TreeManifest.fileName }
            + (change.writes[TreeManifest.fileName] != nil ? [TreeManifest.fileName] : [])
        let journal = Journal(install: installOrder, remove: change.removals)
        let temporary = root.appendingPathComponent(journalTemporary)
        try writeDurably(journal.data, to: temporary)
        try renameOrThrow(temporary, root.appendingPathComponent(journalFile))
        syncFolder(root.path)
        TestHook.pause()
        try rollForward(journal, in: root)
    }

    /// Step 3; safe to repeat after being killed at any point of an earlier attempt.
    private static func rollForward(_ journal: Journal, in root: URL) throws(ForgeError) {
        let staging = root.appendingPathComponent(stagingFolder)
        var touched: Set<String> = [root.path]
        for (path, sha) in journal.remove.sorted(by: { $0.key < $1.key }) {
            let url = root.appendingPathComponent(path)
            // A file someone put there since the run began is not the one the run meant to remove.
            guard let data = FileManager.default.contents(atPath: url.path), Digest.sha256(data).hexString == sha else { continue }
            guard unlink(url.path) == 0 || errno == ENOENT else {
                throw ForgeError("cannot remove the file: \(String(cString: strerror(errno)))", at: SourceLocation(file: url.path),
                                 fix: "check the folder's permissions, then run the command again to finish")
            }
            removeEmptyFolders(from: url.deletingLastPathComponent(), upTo: root)
            touched.insert(url.deletingLastPathComponent().path)
            TestHook.pause()
        }
        for path in journal.install {
            let source = staging.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: source.path) else { continue }  // moved by an earlier attempt
            let target = root.appendingPathComponent(path)
            try makeFolders(target.deletingLastPathComponent())
            try renameOrThrow(source, target)
            touched.insert(target.deletingLastPathComponent().path)
            TestHook.pause()
        }
        for folder in touched { syncFolder(folder) }
        try remove(staging)
        unlink(root.appendingPathComponent(journalFile).path)
        syncFolder(root.path)
    }

    // MARK: Journal

    struct Journal {
        var install: [String]
        var remove: [String: String]

        init(install: [String], remove: [String: String]) {
            self.install = install
            self.remove = remove
        }

        init?(_ data: Data) {
            guard let root = CanonicalJSON.decode(data)?.object, let install = root["install"]?.array?.compactMap(\.string),
                  let remove = root["remove"]?.object?.compactMapValues(\.string),
                  (install + Array(remove.keys)).allSatisfy(TreeManifest.isSafeRelativePath) else { return nil }
            self.install = install
            self.remove = remove
        }

        var data: Data {
            CanonicalJSON.encode(.object(["install": .array(install.map { .string($0) }), "remove": .object(remove.mapValues { .string($0) })]))
        }
    }

    // MARK: File system

    private static func writeDurably(_ data: Data, to url: URL) throws(ForgeError) {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("cannot write", url) }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { buffer -> Bool in
            var offset = 0
            while offset < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 { if errno == EINTR { continue }; return false }
                offset += count
            }
            return true
        }
        guard written, fsync(descriptor) == 0 else { throw failure("cannot write", url) }
    }

    private static func renameOrThrow(_ source: URL, _ target: URL) throws(ForgeError) {
        guard rename(source.path, target.path) == 0 else { throw failure("cannot move a new file into place", target) }
    }

    private static func makeFolders(_ url: URL) throws(ForgeError) {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw ForgeError("cannot create the folder: \(error.localizedDescription)", at: SourceLocation(file: url.path),
                             fix: "check that the tree is writable and that no file stands where the folder should be")
        }
    }

    private static func remove(_ url: URL) throws(ForgeError) {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        do {
            try FileManager.default.removeItem(at: url)
        } catch {
            throw ForgeError("cannot remove pretix-forge's staging folder: \(error.localizedDescription)", at: SourceLocation(file: url.path),
                             fix: "check the folder's permissions")
        }
    }

    /// Folders a removed file leaves empty go too; the tree's own root never does.
    private static func removeEmptyFolders(from folder: URL, upTo root: URL) {
        var current = folder.standardizedFileURL
        let stop = root.standardizedFileURL.path
        while current.path.hasPrefix(stop + "/"), rmdir(current.path) == 0 {
            current = current.deletingLastPathComponent().standardizedFileURL
        }
    }

    private static func syncFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    private static func failure(_ what: String, _ url: URL) -> ForgeError {
        ForgeError("\(what): \(String(cString: strerror(errno)))", at: SourceLocation(file: url.path),
                   fix: "check that the tree is writable and the disk has space, then run the command again")
    }
}

/// An exclusive advisory lock on a tree folder for the lifetime of the object: two pretix-forge
/// runs on one tree take turns. The kernel drops it when the process dies, even by SIGKILL.
public final class TreeLock {
    private let descriptor: Int32

    public init(_ directory: String) throws(ForgeError) {
        descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ForgeError("cannot open the folder: \(String(cString: strerror(errno)))", at: SourceLocation(file: directory))
        }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            FileHandle.standardError.write(Data("waiting for another pretix-forge run on \(directory)\n".utf8))
            flock(descriptor, LOCK_EX)
        }
    }

    deinit { close(descriptor) }
}

/// Test-only: with PRETIX_FORGE_TEST_STEP_DELAY_MS set, a debug build sleeps after each file step
/// of a transaction, so the killing tests can land a SIGKILL in the middle of a write.
/// Release builds do not contain it.
enum TestHook {
    #if DEBUG
    static let delay: useconds_t = {
        let text = ProcessInfo.processInfo.environment["PRETIX_FORGE_TEST_STEP_DELAY_MS"] ?? ""
        return useconds_t(max(0, Int(text) ?? 0) * 1000)
    }()
    #endif

    static func pause() {
        #if DEBUG
        if delay > 0 { usleep(delay) }
        #endif
    }
}
