import Foundation
@testable import PretixForge

/// Paths and helpers shared by the test files.
enum Repo {
    static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// A fresh folder under `.build/test-scratch/`: inside the git-ignored build folder, so
    /// test runs do not pile up folders in /tmp, and `make clean` removes them.
    static func temporaryDirectory() throws -> URL {
        let url = root.appendingPathComponent(".build/test-scratch/\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// The stock config with some TOML lines replaced, for validation tests.
func config(replacing replacements: [String: String] = [:], appending extra: String = "") -> String {
    var lines = ConfigLoader.defaultSource.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    for (index, line) in lines.enumerated() {
        for (key, value) in replacements where line.hasPrefix("\(key) =") {
            // "# key" uncomments an optional key of the starter file.
            let name = key.hasPrefix("# ") ? String(key.dropFirst(2)) : key
            lines[index] = value.isEmpty ? "" : "\(name) = \(value)"
        }
    }
    return lines.joined(separator: "\n") + extra
}

func diagnostics(of source: String) -> [Diagnostic] {
    do {
        _ = try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil)
        return []
    } catch {
        return error.diagnostics
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: String
}

/// A program the tests run is not on PATH: says which and where it comes from, rather than
/// letting `env` fail with status 127 deep inside a harness.
struct MissingProgram: Error, CustomStringConvertible {
    var name: String
    var description: String {
        "\(name) is not on PATH. The vector harness and the rendered-tree checks run the generated Python with it: "
            + "install Python 3.9 or newer (`make test` expects Debian's python3) and run `swift test` again"
    }
}

/// Runs a program to completion, feeding nothing on stdin.
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let searchPath = (environment ?? ProcessInfo.processInfo.environment)["PATH"] ?? ""
    let found = executable.contains("/") || searchPath.split(separator: ":").contains {
        FileManager.default.isExecutableFile(atPath: "\($0)/\(executable)")
    }
    guard found else { throw MissingProgram(name: executable) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes concurrently so a chatty child cannot fill one and block.
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
}
