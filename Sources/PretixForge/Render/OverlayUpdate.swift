import FoundationEssentials
import Glibc

/// `overlay update`: brings overlay files onto the built-in templates of this forge version with
/// a 3-way merge — the base is the built-in text the manifest recorded when the overlay was
/// applied, "theirs" the built-in template now, "ours" the overlay file. The merge is git's
/// (`git merge-file`), not a hand-written diff3.
public enum OverlayUpdate {
    public enum Result: Sendable, Equatable {
        case upToDate(String)
        case merged(String)
        /// Written with conflict markers; `count` conflicting hunks.
        case conflicted(String, count: Int)
        /// The built-in template is gone; the overlay file is now a file of its own.
        case builtinRemoved(String)
        case notMergeable(String, reason: String)
    }

    public struct Outcome: Sendable {
        public var results: [Result]
        /// Overlay-relative path → merged content, for files that changed.
        public var overlayWrites: [String: Data]
        /// The manifest with the merged files' bases moved onto the current built-ins.
        public var manifest: TreeManifest

        public var conflicts: [String] {
            results.compactMap { if case .conflicted(let path, _) = $0 { return path } else { return nil } }
        }
    }

    /// git from PATH; `overlay update` cannot merge without it.
    public static func gitExecutable(environment: [String: String] = ProcessInfo.processInfo.environment) throws(ForgeError) -> String {
        for folder in (environment["PATH"] ?? "").split(separator: ":") where !folder.isEmpty {
            let candidate = "\(folder)/git"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ForgeError("git is not installed (or not on PATH); overlay update merges with `git merge-file`",
                         at: SourceLocation(file: "PATH"), fix: "install git (Debian/Ubuntu: apt-get install git), then run the command again")
    }

    public static func run(manifest: TreeManifest, overlay: Overlay, git: String,
                           builtins: TemplateSet = .embedded) throws(ForgeError) -> Outcome {
        var outcome = Outcome(results: [], overlayWrites: [:], manifest: manifest)
        guard let record = manifest.overlay else { return outcome }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pretix-forge-merge-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        for (path, base) in record.bases.sorted(by: { $0.key < $1.key }) {
            guard let ours = overlay.files[path] else { continue }  // no longer overlaid
            guard let current = builtins.files[path] else {
                outcome.results.append(.builtinRemoved(path))
                continue
            }
            guard Digest.sha256(current).hexString != base.sha256 else {
                outcome.results.append(.upToDate(path))
                continue
            }
            guard let baseText = base.text, String(data: ours, encoding: .utf8) != nil, String(data: current, encoding: .utf8) != nil else {
                outcome.results.append(.notMergeable(path, reason: "not text; compare it with the built-in template by hand"))
                continue
            }
            let labels = ["\(overlay.directory)/\(path) (your overlay)", "built-in \(path), pretix-forge \(base.forgeVersion)",
                          "built-in \(path), pretix-forge \(Pipeline.toolVersion)"]
            let (merged, conflicts) = try merge(ours: ours, base: Data(baseText.utf8), theirs: current, labels: labels, git: git,
                                                scratch: scratch, path: "\(overlay.directory)/\(path)")
            if merged != ours { outcome.overlayWrites[path] = merged }
            outcome.results.append(conflicts == 0 ? .merged(path) : .conflicted(path, count: conflicts))
            // The overlay now stands on the current built-in: with conflicts too, since their
            // markers already show both sides and a second merge would only nest them.
            outcome.manifest.overlay?.bases[path] = TreeManifest.Base(current, forgeVersion: Pipeline.toolVersion)
        }
        return outcome
    }

    private static func merge(ours: Data, base: Data, theirs: Data, labels: [String], git: String, scratch: URL,
                              path: String) throws(ForgeError) -> (Data, Int) {
        let files = ["ours", "base", "theirs"].map { scratch.appendingPathComponent($0) }
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            for (url, data) in zip(files, [ours, base, theirs]) { try data.write(to: url) }
        } catch {
            throw ForgeError("cannot prepare the merge: \(describe(error))", at: SourceLocation(file: scratch.path))
        }
        // stdout and stderr through pipes, stdin from /dev/null (forge_spawn); no death signal: this
        // may run on a worker thread, whose exit would fire it (ChildProcess).
        var output: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        guard pipe(&output) == 0 else {
            throw ForgeError("cannot create a pipe: \(String(cString: strerror(errno)))", at: SourceLocation(file: git))
        }
        guard pipe(&errors) == 0 else {
            close(output[0]); close(output[1])
            throw ForgeError("cannot create a pipe: \(String(cString: strerror(errno)))", at: SourceLocation(file: git))
        }
        let process: ChildProcess
        do throws(ForgeError) {
            defer { close(output[1]); close(errors[1]) }
            process = try ChildProcess(git, ["merge-file", "-p", "-L", labels[0], "-L", labels[1], "-L", labels[2]] + files.map(\.path),
                                       environment: ProcessInfo.processInfo.environment, output: output[1], errors: errors[1],
                                       deathSignal: 0)
        } catch {
            close(output[0]); close(errors[0])
            throw ForgeError("cannot run git: \(error.diagnostics.first?.message ?? "\(error)")", at: SourceLocation(file: git),
                             fix: "check the git installation")
        }
        let merged = readToEnd(output[0])
        let message = String(decoding: readToEnd(errors[0]), as: UTF8.self)
        let status = Int(process.waitForExit())
        // git merge-file exits with the number of conflicts (at most 127), or with an error
        // (a signal gives 128 + its number).
        guard (0...127).contains(status) else {
            throw ForgeError("git merge-file failed: \(message.trimming(.whitespacesAndNewlines))", at: SourceLocation(file: path))
        }
        return (merged, status)
    }

    /// Everything `descriptor` gives until end of file; closes it.
    private static func readToEnd(_ descriptor: Int32) -> Data {
        defer { close(descriptor) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { return data }
            data.append(contentsOf: buffer[..<count])
        }
    }
}
