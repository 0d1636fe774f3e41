import Foundation
import PropertyBased
import Testing
@testable import PretixForge

/// A long-running `tree_checker.py` (compile, Django template load, JS parse, literal text),
/// so each sample costs a render and a line of JSON rather than an interpreter start.
final class TreeChecker: @unchecked Sendable {
    private let process = Process()
    private let input = Pipe(), output = Pipe()
    private let lock = NSLock()
    private var buffer = Data()

    /// The interpreter with pretix (for Django's template engine) and esprima: the real-pretix venv.
    static var python: String {
        ProcessInfo.processInfo.environment["PRETIX_PYTHON"] ?? Repo.url(".venvs/pretix/bin/python").path
    }

    init(python: String = TreeChecker.python) throws {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw VectorHarness.HarnessFailure(message: "no pretix venv at \(python): run `make test` (it creates .venvs/pretix) or set PRETIX_PYTHON")
        }
        let probe = try run(python, ["-c", "import django, esprima, pretix"])
        guard probe.status == 0 else {
            throw VectorHarness.HarnessFailure(message: "the pretix venv at \(python) cannot import django, esprima and pretix "
                + "(\(probe.stderr.split(separator: "\n").last ?? "")): run `make deps-test`, which installs "
                + "Tests/Python/requirements-pretix.txt into it, or set PRETIX_PYTHON")
        }
        // A checker that dies must fail this test with its message, not end the whole test
        // process with SIGPIPE on the next write.
        signal(SIGPIPE, SIG_IGN)
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [Repo.url("Tests/Support/tree_checker.py").path]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    func problems(tree: URL, probe: String) throws -> [String] {
        try lock.withLock {
            let request = try JSONSerialization.data(withJSONObject: ["tree": tree.path, "probe": probe]) + Data("\n".utf8)
            try input.fileHandleForWriting.write(contentsOf: request)
            while !buffer.contains(UInt8(ascii: "\n")) {
                let chunk = output.fileHandleForReading.availableData
                guard !chunk.isEmpty else { throw VectorHarness.HarnessFailure(message: "tree_checker.py exited") }
                buffer.append(chunk)
            }
            let newline = buffer.firstIndex(of: UInt8(ascii: "\n"))!
            let line = buffer[..<newline]
            buffer = Data(buffer[(newline + 1)...])
            let answer = try JSONSerialization.jsonObject(with: line) as? [String: [String]]
            return answer?["problems"] ?? ["unreadable checker answer"]
        }
    }
}

@Suite("Hostile text, by property")
struct PropertyTests {
    /// Pieces that break naive escaping in one target or another.
    static let fragments = [
        "'", "\"", "\\", "\n", "\t", "</script>", "<!--", "{% if x %}", "{%", "%}", "{{ x }}", "{{", "}}", "{#", "#}",
        "%s", "%(name)s", "${x}", "`", "]]>", "&amp;", "🚀", "\u{202E}", "\u{200F}", "ü", "a", " ", "\u{0}", "'''", "\"\"\"",
    ]

    static let hostileText = Gen.element(of: fragments).array(of: 1...10).map { $0.compactMap { $0 }.joined() }

    /// The stock config with `text` in every free-text field (single-line fields get it with
    /// line breaks turned into spaces, as their validation demands).
    static func config(with text: String) -> String {
        let oneLine = text.replacingOccurrences(of: "\n", with: " ")
        var source = ""
        for line in ConfigLoader.defaultSource.split(separator: "\n", omittingEmptySubsequences: false) {
            let key = line.split(separator: " ").first.map(String.init) ?? ""
            switch key {
            case "summary", "author": source += "\(key) = \(Escaping.toml(oneLine))\n"
            case "verbose_name", "public_name": source += "\(key) = \(Escaping.toml(text))\n"
            case _ where ForgeConfig.Branding.textKeys.contains(key):
                source += "\(key) = { en = \(Escaping.toml(text)), de = \(Escaping.toml(text)) }\n"
            default: source += line + "\n"
            }
        }
        return source
    }

    /// A venv that exists but lacks pretix (a half-finished install) is named with its fix,
    /// rather than the checker dying on its first answer.
    @Test func aPretixVenvWithoutPretixIsNamedWithItsFix() throws {
        let fake = try Repo.temporaryDirectory().appendingPathComponent("python")
        try "#!/bin/sh\necho \"ModuleNotFoundError: No module named 'django'\" >&2\nexit 1\n".write(to: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake.path)
        let error = try #require(throws: VectorHarness.HarnessFailure.self) { try TreeChecker(python: fake.path) }
        #expect(error.description.contains("cannot import django, esprima and pretix (ModuleNotFoundError: No module named 'django')"))
        #expect(error.description.contains("run `make deps-test`"))
    }

    @Test func everyTargetShowsHostileTextLiterally() async throws {
        let checker = try TreeChecker()
        let scratch = try Repo.temporaryDirectory()
        await propertyCheck(count: 40, input: Self.hostileText) { text in
            do {
                let config = try ConfigLoader.load(source: Self.config(with: text), file: "hostile.toml", baseDirectory: nil)
                let tree = try Pipeline.render(config)
                let folder = scratch.appendingPathComponent(UUID().uuidString)
                for (path, data) in tree.files where [".py", ".html", ".js"].contains(where: path.hasSuffix) {
                    let url = folder.appendingPathComponent(path)
                    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                    try data.write(to: url)
                }
                let problems = try checker.problems(tree: folder, probe: text)
                #expect(problems.isEmpty, "text \(text.debugDescription): \(problems.joined(separator: "; "))")
                try? FileManager.default.removeItem(at: folder)
            } catch let error as ForgeError {
                // Two refusals are right: NUL, the one character TOML carries that no generated
                // file can, and text that is only white space. Both must name the problem.
                let blank = text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
                let expected = text.contains("\u{0}") ? "NUL" : blank ? "must not be empty" : nil
                #expect(expected.map { error.description.contains($0) } == true, "text \(text.debugDescription) refused: \(error)")
            } catch {
                Issue.record("text \(text.debugDescription): \(error)")
            }
        }
    }
}
