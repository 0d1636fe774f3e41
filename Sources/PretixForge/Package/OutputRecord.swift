import FoundationEssentials
import Synchronization

/// Which files of an output folder (dist/) pretix-forge wrote: their names and SHA-256, sealed
/// for this machine (`MachineSeal`) in `.pretix-forge-outputs` inside the folder. An update
/// replaces a file of an output's name only when this record lists it unchanged, or when it
/// holds exactly the bytes about to be written: a hand-written SHA256SUMS, or an archive another
/// tool built, is the user's, and the build stops instead. Nothing checked out from git can pass
/// for a record, since the seal needs this machine's key.
final class OutputRecord: Sendable {
    static let fileName = ".pretix-forge-outputs"
    private static let header = "pretix-forge outputs 1"

    private let folder: String
    private let seal: MachineSeal?
    /// The record file's bytes as the folder held them, if it held one.
    private let previous: Data?
    private struct State {
        /// What the folder's record listed (name → SHA-256), when this machine sealed it.
        var recorded: [String: String] = [:]
        /// Staging-relative paths written in this run, with the SHA-256 of what was written.
        var written: [String: String] = [:]
        /// Whether this run put a file in the folder that was not there byte for byte.
        var changed = false
    }
    private let state: Mutex<State>

    /// The record of `staged`, the staging copy of the output folder `folder` (named in errors).
    /// A record that this machine did not seal stops the update: it is not ours to replace.
    init(staged: String, folder: String, seal: MachineSeal?) throws(ForgeError) {
        self.folder = folder
        self.seal = seal
        var recorded: [String: String] = [:]
        var previous: Data?
        switch try Self.entry(Self.fileName, in: staged, shownIn: folder) {
        case .missing:
            break
        case .file(let text):
            previous = text
            guard let seal, let parsed = Self.parse(String(decoding: text, as: UTF8.self), seal: seal) else {
                throw ForgeError("was not written by pretix-forge on this machine, so it cannot tell which files here are its own",
                                 at: SourceLocation(file: folder + "/" + Self.fileName),
                                 fix: "delete it (pretix-forge then replaces only files identical to what it writes), or build into another folder with --out")
            }
            recorded = parsed
        default:
            throw Self.inTheWay(folder + "/" + Self.fileName)
        }
        self.previous = previous
        state = Mutex(State(recorded: recorded))
    }

    /// Refuses `name` when the staging copy holds a file of that name that pretix-forge did not
    /// write and whose bytes differ from `digest`, what is about to replace it. True when that
    /// file already holds exactly those bytes.
    @discardableResult
    func claim(_ name: String, in staged: String, replacingWith digest: String) throws(ForgeError) -> Bool {
        let shown = folder + "/" + name
        let existing: Data
        switch try Self.entry(name, in: staged, shownIn: folder) {
        case .missing: return false
        case .file(let data): existing = data
        default: throw Self.inTheWay(shown)
        }
        let existingDigest = Digest.sha256(existing).hexString
        let recorded = state.withLock { $0.recorded[name] }
        guard existingDigest == digest || existingDigest == recorded else {
            throw ForgeError("is not pretix-forge's to replace: it did not write this file here, or the file changed since", at: SourceLocation(file: shown),
                             fix: "move it out of the folder if it is yours, or delete it to have it rebuilt; or build into another folder with --out")
        }
        return existingDigest == digest
    }

    /// `path` now holds what `digest` names; `changed` when it did not before this run.
    func wrote(_ path: String, digest: String, changed: Bool = true) {
        state.withLock { state in
            state.written[path] = digest
            if changed && !path.contains("/") { state.changed = true }
        }
    }

    /// Whether the folder comes out as it was: no file written that it did not hold byte for
    /// byte, and `record` (`sealedData`) the record it holds.
    func leavesFolderAsItWas(with record: Data) -> Bool {
        !state.withLock { $0.changed } && record == previous
    }

    func digest(ofWritten path: String) -> String? {
        state.withLock { $0.written[path] }
    }

    func moved(_ from: String, to path: String) {
        state.withLock { state in
            state.written[path] = state.written.removeValue(forKey: from)
            state.changed = true
        }
    }

    /// The record to swap in with the staged folder: what the old one listed that is still
    /// there under its name, and what this run wrote at the top of the folder. Nil without a key.
    func sealedData(present: (String) -> Bool) -> Data? {
        guard let seal else { return nil }
        let files = state.withLock { state -> [String: String] in
            var files = state.recorded.filter { present($0.key) }
            for (path, digest) in state.written where !path.contains("/") { files[path] = digest }
            return files
        }
        let lines = files.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { "\($0.value)  \($0.key)" }
        return Data(([Self.header, "seal " + seal.seal([Self.header] + lines)] + lines).map { $0 + "\n" }.joined().utf8)
    }

    private static func parse(_ text: String, seal: MachineSeal) -> [String: String]? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.last == "" else { return nil }
        lines.removeLast()
        guard lines.count >= 2, lines[0] == header, lines[1].hasPrefix("seal ") else { return nil }
        let entries = Array(lines.dropFirst(2))
        guard seal.verifies(String(lines[1].dropFirst(5)), [header] + entries) else { return nil }
        var files: [String: String] = [:]
        for entry in entries {
            let parts = entry.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[1].isEmpty else { return nil }
            files[String(parts[2])] = String(parts[0])
        }
        return files
    }

    /// What stands at `name` in `staged`, looked at without following a link and read only when
    /// it is a regular file (`TreeRoot`): a named pipe there is never opened. Errors name the
    /// file in `folder`, the output the user knows.
    private static func entry(_ name: String, in staged: String, shownIn folder: String) throws(ForgeError) -> TreeRoot.Entry {
        let root = try TreeRoot(staged)
        do {
            return try root.ownEntry(name)
        } catch {
            throw ForgeError(error.message, at: SourceLocation(file: folder + "/" + error.path), fix: error.fix)
        }
    }

    private static func inTheWay(_ shown: String) -> ForgeError {
        ForgeError("is in the way of the file pretix-forge writes there, and is not a file", at: SourceLocation(file: shown),
                   fix: "move it out of the folder, or build into another folder with --out")
    }
}
