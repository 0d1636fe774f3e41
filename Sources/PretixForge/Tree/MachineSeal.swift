import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// The proof that a journal or scratch folder was written by pretix-forge on this machine, for
/// this user (rule 5 in TreeRoot.swift): an HMAC-SHA256 under a random key kept outside every
/// tree, in `$XDG_STATE_HOME/pretix-forge/seal-key` (`~/.local/state/...` without it). Whoever
/// can commit to a branch cannot know the key, so nothing checked out from git can carry a valid
/// seal.
public struct MachineSeal: Sendable {
    private let key: Data

    /// The key, created on first use (mode 0600 in a folder of mode 0700).
    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ForgeError) -> MachineSeal {
        let folder: String
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            folder = state + "/pretix-forge"
        } else if let home = environment["HOME"], home.hasPrefix("/") {
            folder = home + "/.local/state/pretix-forge"
        } else {
            throw ForgeError("neither XDG_STATE_HOME nor HOME is set to an absolute path", at: SourceLocation(file: "environment"),
                             fix: "set HOME: pretix-forge keeps the key that seals its journals in ~/.local/state/pretix-forge")
        }
        let keyPath = folder + "/seal-key"
        if let key = try readKey(keyPath) { return MachineSeal(key: key) }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw ForgeError("cannot create the folder for pretix-forge's seal key: \(describe(error))",
                             at: SourceLocation(file: folder), fix: "make the folder writable, or set XDG_STATE_HOME to one that is")
        }
        var generator = SystemRandomNumberGenerator()
        let fresh = Data((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
        let temporary = keyPath + ".\(getpid()).tmp"
        let file = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw failure("cannot create the seal key", temporary) }
        let written = fresh.withUnsafeBytes { write(file, $0.baseAddress, $0.count) } == fresh.count && fsync(file) == 0
        close(file)
        // link() fails if another run created the key meanwhile; then both use that one.
        if written { link(temporary, keyPath) }
        unlink(temporary)
        guard written else { throw failure("cannot write the seal key", keyPath) }
        guard let key = try readKey(keyPath) else { throw failure("cannot read the seal key", keyPath) }
        return MachineSeal(key: key)
    }

    private static func readKey(_ path: String) throws(ForgeError) -> Data? {
        let file = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard file >= 0 else {
            if errno == ENOENT { return nil }
            throw failure("cannot read the seal key", path)
        }
        defer { close(file) }
        var info = stat()
        var bytes = [UInt8](repeating: 0, count: 32)
        guard fstat(file, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == getuid(), info.st_size == 32,
              read(file, &bytes, 32) == 32 else {
            throw ForgeError("is not a seal key pretix-forge wrote for this user (a 32-byte file owned by them)", at: SourceLocation(file: path),
                             fix: "delete it; pretix-forge writes a new one (journals sealed with the old key can then not be recovered)")
        }
        return Data(bytes)
    }

    private static func failure(_ what: String, _ path: String) -> ForgeError {
        ForgeError("\(what): \(String(cString: strerror(errno)))", at: SourceLocation(file: path),
                   fix: "make the folder writable, or set XDG_STATE_HOME to one that is")
    }

    /// The seal over `parts` (each names what it is, so one kind of seal never passes for another).
    public func seal(_ parts: [String]) -> String {
        Digest.hmacSHA256(key: key, message: Data(parts.joined(separator: "\n").utf8)).hexString
    }

    public func verifies(_ seal: String, _ parts: [String]) -> Bool {
        guard let given = Data(hexString: seal) else { return false }
        return Digest.constantTimeEquals(given, Data(hexString: self.seal(parts))!)
    }
}
