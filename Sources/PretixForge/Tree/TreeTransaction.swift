import FoundationEssentials
import Glibc

/// Rewrites the managed files of an existing tree in place, with a write-ahead journal, so that
/// a crash or SIGKILL never leaves a mix of old and new managed files behind once the next
/// writing command (`generate`, `overlay update`, `recover`) has looked at the tree.
///
/// 1. `.pretix-forge.staging/` is created inside the tree and sealed (rule 5 in TreeRoot.swift);
///    every new file is written into it and fsynced; nothing else in the tree has changed yet. A
///    run killed here is rolled back: the next writing command deletes the sealed staging folder.
/// 2. `.pretix-forge.journal` (what to install with each file's SHA-256, what to remove, the
///    tree folder's identity, and the seal over all of it) is written to a temporary name,
///    fsynced and renamed into place: the commit point.
/// 3. Files are removed and the staged files renamed over their targets, the manifest last;
///    then the staging folder and the journal are deleted. A run killed here is rolled forward
///    by the next writing command, which checks the seal and each staged file's digest, then
///    redoes step 3.
///
/// One folder rename cannot swap a few files inside a git work tree, so between a kill in step 3
/// and the next command the files on disk are mixed; `check` and `build --tree` refuse to read a
/// tree in that state and name `recover`. Only the listed paths are touched, each through
/// `TreeRoot`: `.git/` and every file the manifest does not list stay as they are.
public enum TreeTransaction {
    public static let stagingFolder = ".pretix-forge.staging"
    public static let journalFile = ".pretix-forge.journal"
    static let journalTemporary = ".pretix-forge.journal.tmp"
    /// Inside the staging folder: the seal that makes it pretix-forge's own.
    static let stagingSeal = ".pretix-forge.seal"

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

    // MARK: What an interrupted run left

    /// The scratch files of an interrupted run in the tree, by name: the journal, its temporary
    /// file, the staging folder (whatever they are: files, folders or links).
    public static func leftovers(in root: TreeRoot) -> [String] {
        [journalFile, journalTemporary, stagingFolder].filter { (try? root.ownEntry($0)) != .missing }
    }

    /// The error a reading command gives for a tree with leftovers: it reads nothing and changes
    /// nothing, and names the command that finishes the run.
    public static func leftoverError(_ leftovers: [String], in root: TreeRoot) -> ForgeError {
        ForgeError("an interrupted pretix-forge run left \(leftovers.joined(separator: " and ")) here, so the managed files may be "
                   + "half old, half new; nothing was read or changed",
                   at: SourceLocation(file: root.join(leftovers[0])),
                   fix: "finish the run with `pretix-forge recover --tree \(Pipeline.shellQuoted(root.path))` (it completes the run if it "
                       + "had committed, else discards its staged files), then run this command again")
    }

    // MARK: Recovery

    /// Completes or undoes a run that was killed while writing the tree, if this machine's
    /// pretix-forge sealed what it left; refuses anything else without touching it.
    public static func recover(in root: TreeRoot) throws(ForgeError) -> Recovery? {
        let found = leftovers(in: root)
        guard !found.isEmpty else { return nil }
        let seal = try MachineSeal.load()
        for name in found where name != stagingFolder {
            guard case .file = try entry(name, in: root) else { throw notOurs(name, in: root, why: "it is not a regular file") }
        }
        // Written before the commit point: a run killed while writing it had not committed.
        if found.contains(journalTemporary) {
            guard case .file(let data) = try entry(journalTemporary, in: root), Journal(data, seal: seal, tree: root.identity) != nil else {
                throw notOurs(journalTemporary, in: root, why: "it does not carry this machine's seal")
            }
            try removeOwn(journalTemporary, in: root)
        }
        if found.contains(journalFile) {
            guard case .file(let data) = try entry(journalFile, in: root) else { return nil }
            guard let journal = Journal(data, seal: seal, tree: root.identity) else {
                throw notOurs(journalFile, in: root, why: "it does not carry this machine's seal for this folder (a journal committed to "
                              + "git, or copied from another folder or machine, looks like this)")
            }
            try rollForward(journal, in: root, seal: seal)
            return .completed
        }
        guard found.contains(stagingFolder) else { return nil }
        try removeStaging(in: root, seal: seal)
        return .rolledBack
    }

    private static func entry(_ name: String, in root: TreeRoot) throws(ForgeError) -> TreeRoot.Entry {
        do { return try root.ownEntry(name) } catch { throw error.error(in: root) }
    }

    private static func notOurs(_ name: String, in root: TreeRoot, why: String) -> ForgeError {
        ForgeError("was not left by an interrupted pretix-forge run on this machine (\(why)); pretix-forge does not act on it",
                   at: SourceLocation(file: root.join(name)),
                   fix: "if git tracks it, remove it from the branch (`git rm -r --cached \(name)`); check that it holds nothing of yours, "
                       + "delete \(journalFile), \(journalTemporary) and \(stagingFolder)/, then run the command again")
    }

    // MARK: Commit

    public static func commit(_ change: Change, in root: TreeRoot) throws(ForgeError) {
        guard !change.isEmpty else { return }
        let found = leftovers(in: root)
        guard found.isEmpty else { throw leftoverError(found, in: root) }
        let seal = try MachineSeal.load()
        let order = change.writes.keys.sorted().filter { $0 != TreeManifest.fileName }
            + (change.writes[TreeManifest.fileName] != nil ? [TreeManifest.fileName] : [])
        let journal = Journal(install: order.map { ($0, Digest.sha256(change.writes[$0]!).hexString) }, remove: change.removals,
                              tree: root.identity)
        do throws(TreeRoot.Failure) {
            try root.makeFolder(stagingFolder)
            guard let stagingIdentity = root.identity(of: stagingFolder) else {
                throw TreeRoot.Failure(path: stagingFolder, message: "the staging folder disappeared", fix: "run the command again")
            }
            try root.writeFile(stagingFolder + "/" + stagingSeal, Data(seal.seal(stagingSealParts(root, stagingIdentity)).utf8), durable: true)
            var folders: Set<String> = [stagingFolder]
            for (path, data) in change.writes.sorted(by: { $0.key < $1.key }) {
                let staged = stagingFolder + "/" + path
                try root.writeFile(staged, data, durable: true)
                folders.insert(Self.folder(of: staged))
                TestHook.pause()
            }
            for folder in folders { root.syncFolder(folder) }
            try root.writeFile(journalTemporary, journal.data(sealedWith: seal), durable: true)
            try root.rename(journalTemporary, to: journalFile)
            root.syncFolder("")
            TestHook.pause()
        } catch {
            throw error.error(in: root)
        }
        try rollForward(journal, in: root, seal: seal)
    }

    static func stagingSealParts(_ root: TreeRoot, _ stagingIdentity: String) -> [String] {
        ["pretix-forge staging folder", root.identity, stagingIdentity]
    }

    /// The folder holding a tree-relative path, "" for the tree's top ("a/b/c" → "a/b", "c" → "").
    static func folder(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[..<$0]) } ?? ""
    }

    /// Step 3; safe to repeat after being killed at any point of an earlier attempt.
    private static func rollForward(_ journal: Journal, in root: TreeRoot, seal: MachineSeal) throws(ForgeError) {
        do throws(TreeRoot.Failure) {
            var touched: Set<String> = [""]
            for (path, sha) in journal.remove.sorted(by: { $0.key < $1.key }) {
                // A file someone put there since the run began is not the one the run meant to remove.
                guard try root.removeFile(path, sha256: sha) else { continue }
                let folder = Self.folder(of: path)
                root.removeEmptyFolders(from: folder)
                touched.insert(folder)
                TestHook.pause()
            }
            for (path, sha) in journal.install {
                let staged = stagingFolder + "/" + path
                guard case .file(let data) = try root.ownEntry(staged) else { continue }  // moved by an earlier attempt
                guard Digest.sha256(data).hexString == sha else {
                    throw TreeRoot.Failure(path: staged, message: "differs from the file the interrupted run staged (its SHA-256 is not "
                                           + "the one the journal records); nothing more was moved",
                                           fix: "inspect \(stagingFolder)/ and the files the journal lists, then delete \(journalFile) "
                                               + "and \(stagingFolder)/")
                }
                try root.rename(staged, to: path)
                touched.insert(Self.folder(of: path))
                TestHook.pause()
            }
            for folder in touched { root.syncFolder(folder) }
        } catch {
            throw error.error(in: root)
        }
        try removeStaging(in: root, seal: seal)
        try removeOwn(journalFile, in: root)
        root.syncFolder("")
    }

    /// Deletes the staging folder if its seal proves it this machine's, else refuses.
    private static func removeStaging(in root: TreeRoot, seal: MachineSeal) throws(ForgeError) {
        guard try entry(stagingFolder, in: root) != .missing else { return }
        let sealPath = stagingFolder + "/" + stagingSeal
        guard case .folder = try entry(stagingFolder, in: root), let identity = root.identity(of: stagingFolder),
              case .file(let data) = try entry(sealPath, in: root),
              seal.verifies(String(decoding: data, as: UTF8.self), stagingSealParts(root, identity)) else {
            throw notOurs(stagingFolder, in: root, why: "it does not carry this machine's seal for this folder")
        }
        do { try root.removeScratchFolder(stagingFolder) } catch { throw error.error(in: root) }
    }

    private static func removeOwn(_ name: String, in root: TreeRoot) throws(ForgeError) {
        do { try root.removeOwnFile(name) } catch { throw error.error(in: root) }
    }

    // MARK: Journal

    struct Journal {
        static let format = 2
        /// Path and SHA-256 of each staged file, in the order they are moved into place.
        var install: [(path: String, sha256: String)]
        var remove: [String: String]
        /// The identity ("device:inode") of the tree folder the run wrote.
        var tree: String

        init(install: [(path: String, sha256: String)], remove: [String: String], tree: String) {
            self.install = install
            self.remove = remove
            self.tree = tree
        }

        /// The journal in `data` if it is well-formed, sealed by `seal` and written for `tree`,
        /// and every path in it is one pretix-forge may write; nil otherwise.
        init?(_ data: Data, seal: MachineSeal, tree: String) {
            guard let root = CanonicalJSON.decode(data)?.object, root["format"]?.int == Self.format,
                  let sealed = root["seal"]?.string, root["tree"]?.string == tree,
                  let entries = root["install"]?.array, let remove = root["remove"]?.object?.compactMapValues(\.string) else { return nil }
            var unsealed = root
            unsealed["seal"] = nil
            guard seal.verifies(sealed, ["pretix-forge journal", String(decoding: CanonicalJSON.encode(.object(unsealed)), as: UTF8.self)])
            else { return nil }
            var install: [(path: String, sha256: String)] = []
            for entry in entries {
                guard let pair = entry.array, pair.count == 2, let path = pair[0].string, let sha = pair[1].string else { return nil }
                install.append((path, sha))
            }
            let paths = install.map(\.path) + Array(remove.keys)
            guard paths.allSatisfy({ $0 == TreeManifest.fileName || TreeRoot.problem(with: $0) == nil }) else { return nil }
            self.install = install
            self.remove = remove
            self.tree = tree
        }

        private var unsealed: [String: CanonicalJSON.Value] {
            ["format": .int(Self.format), "tree": .string(tree),
             "install": .array(install.map { .array([.string($0.path), .string($0.sha256)]) }),
             "remove": .object(remove.mapValues { .string($0) })]
        }

        func data(sealedWith seal: MachineSeal) -> Data {
            var members = unsealed
            members["seal"] = .string(seal.seal(["pretix-forge journal", String(decoding: CanonicalJSON.encode(.object(unsealed)), as: UTF8.self)]))
            return CanonicalJSON.encode(.object(members))
        }
    }
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
