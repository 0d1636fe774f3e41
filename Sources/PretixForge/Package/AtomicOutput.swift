import CSupport
import Foundation

/// Writes outputs so a reader sees the old state or the new one, never a mix: everything is
/// staged in a sibling folder, then swapped in with one rename.
public enum AtomicOutput {
    /// Creates `directory` holding exactly `files`: it appears whole, or not at all. Folders
    /// that exist already are written in place by `TreeTransaction`, which touches only the
    /// files the tree's manifest lists.
    public static func createDirectory(_ directory: String, with files: [String: Data]) throws(ForgeError) {
        try publish(files, to: directory, keepingOthers: false)
    }

    /// Writes `files` into `directory`, keeping files it holds that are not being replaced
    /// (earlier versions in dist/, say).
    public static func update(_ directory: String, with files: [String: Data]) throws(ForgeError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ForgeError("exists and is not a folder", at: SourceLocation(file: directory), fix: "choose a folder for --out")
        }
        try publish(files, to: directory, keepingOthers: true)
    }

    private static func publish(_ files: [String: Data], to directory: String, keepingOthers: Bool) throws(ForgeError) {
        let fileManager = FileManager.default
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let parent = target.deletingLastPathComponent()
        let stagingPrefix = ".\(target.lastPathComponent).forge-staging-"
        let staging = parent.appendingPathComponent(stagingPrefix + String(getpid()))
        removeAbandonedStaging(in: parent, prefix: stagingPrefix)
        let location = SourceLocation(file: target.path)
        do {
            try fileManager.createDirectory(at: parent, withIntermediateDirectories: true)
            try? fileManager.removeItem(at: staging)
            if keepingOthers, fileManager.fileExists(atPath: target.path) {
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
            throw ForgeError("cannot write the output: \(error.localizedDescription)", at: location,
                             fix: "check that the folder is writable and the disk has space")
        }
        // A new tree is renamed into place, which fails rather than replace a folder that
        // appeared meanwhile with contents; dist/ is exchanged whole with its updated copy.
        if keepingOthers, fileManager.fileExists(atPath: target.path) {
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

    /// A build killed mid-way leaves its staging folder behind; remove those whose process is gone.
    private static func removeAbandonedStaging(in parent: URL, prefix: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(at: parent.appendingPathComponent(name))
        }
    }
}
