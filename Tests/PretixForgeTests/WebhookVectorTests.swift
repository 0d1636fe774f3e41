import Foundation
import Testing
@testable import PretixForge

/// One entry of Tests/Vectors/webhook-signatures.json (schema in its "description").
struct WebhookVector: Decodable {
    struct Config: Decodable {
        var signature_payload: String
        var timestamp_unit: String
        var tolerance_seconds: Int
    }

    struct Expected: Decodable, Equatable {
        var verdict: String
        var reason: String
    }

    var name: String
    var config: Config
    var secret: String
    var headers: [String: String?]
    var body: String?
    var body_base64: String?
    var now: Double
    var expected_hmac: String?
    var expected: Expected

    var bodyBytes: Data {
        body.map { Data($0.utf8) } ?? Data(base64Encoded: body_base64 ?? "") ?? Data()
    }

    /// The timestamp header as the verifier signs it: HTTP optional whitespace trimmed.
    var strippedTimestamp: String? {
        guard let raw = headers[WebhookSigner.timestampHeader] ?? nil else { return nil }
        let scalars = raw.unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(scalars[first...last])
    }
}

struct VectorFile: Decodable {
    var vectors: [WebhookVector]
}

/// Holds our HMAC and the generated Python verifier to the shared vectors.
enum VectorHarness {
    static let vectorsURL = Repo.url("Tests/Vectors/webhook-signatures.json")

    static func load(_ url: URL = vectorsURL) throws -> [WebhookVector] {
        try JSONDecoder().decode(VectorFile.self, from: Data(contentsOf: url)).vectors
    }

    /// Writes the generated plugin's webhook.py (default config) to a temporary folder.
    static func renderedWebhookModule() throws -> URL {
        let tree = try Pipeline.render(try ConfigLoader.loadDefault())
        let folder = try Repo.temporaryDirectory()
        let url = folder.appendingPathComponent("webhook.py")
        try #require(tree.files["pretix_noderails/webhook.py"]).write(to: url)
        return url
    }

    /// Runs every vector through webhook.py in one python3 process and returns the
    /// disagreements with the vectors' expectations (empty when all agree).
    static func pythonMismatches(vectorsURL: URL, webhookModule: URL) throws -> [String] {
        let result = try run("python3", [Repo.url("Tests/Vectors/run_vectors.py").path, webhookModule.path, vectorsURL.path])
        guard result.status == 0 else {
            throw HarnessFailure(message: "python3 run_vectors.py failed (\(result.status)): \(result.stderr)")
        }
        struct Output: Decodable { var results: [Result] }
        struct Result: Decodable { var name: String; var accepted: Bool; var reason: String; var hmac: String? }
        let output = try JSONDecoder().decode(Output.self, from: result.stdout)
        let vectors = try load(vectorsURL)
        guard output.results.count == vectors.count else {
            return ["python evaluated \(output.results.count) of \(vectors.count) vectors"]
        }
        var mismatches: [String] = []
        for (vector, result) in zip(vectors, output.results) {
            let verdict = result.accepted ? "accept" : "reject"
            if result.name != vector.name || verdict != vector.expected.verdict || result.reason != vector.expected.reason {
                mismatches.append("\(vector.name): expected \(vector.expected.verdict)/\(vector.expected.reason), webhook.py said \(verdict)/\(result.reason)")
            }
            if result.hmac != vector.expected_hmac {
                mismatches.append("\(vector.name): expected hmac \(vector.expected_hmac ?? "null"), webhook.py computed \(result.hmac ?? "null")")
            }
        }
        return mismatches
    }

    struct HarnessFailure: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

@Suite("Webhook signatures: RFC 4231, shared vectors, generated Python")
struct WebhookVectorTests {
    /// RFC 4231 §4.2–4.8, HMAC-SHA256 (case 5 is truncated to 128 bits by the RFC).
    static let rfc4231: [(key: Data, data: Data, hex: String)] = [
        (Data(repeating: 0x0b, count: 20), Data("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Data("Jefe".utf8), Data("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Data(repeating: 0xaa, count: 20), Data(repeating: 0xdd, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Data((1...25).map { UInt8($0) }), Data(repeating: 0xcd, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        (Data(repeating: 0x0c, count: 20), Data("Test With Truncation".utf8),
         "a3b6167473100ee06e0c796c2955552b"),
        (Data(repeating: 0xaa, count: 131), Data("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (Data(repeating: 0xaa, count: 131),
         Data("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    @Test(arguments: 0..<7)
    func rfc4231TestCase(_ index: Int) {
        let (key, data, hex) = Self.rfc4231[index]
        #expect(Digest.hmacSHA256(key: key, message: data).hexString.hasPrefix(hex))
    }

    @Test func vectorsCoverBothSchemesAndEveryReason() throws {
        let vectors = try VectorHarness.load()
        #expect(vectors.count >= 50)
        #expect(Set(vectors.map(\.config.signature_payload)) == ["timestamp.body", "body"])
        let reasons = Set(vectors.map(\.expected.reason))
        for reason in ["ok", "missing_signature", "missing_timestamp", "malformed_timestamp", "malformed_signature",
                       "signature_mismatch", "stale_timestamp", "future_timestamp"] {
            #expect(reasons.contains(reason), "no vector for \(reason)")
        }
        #expect(Set(vectors.map(\.name)).count == vectors.count, "vector names must be unique")
    }

    @Test func ourHmacReproducesEveryExpectedDigest() throws {
        var checked = 0
        for vector in try VectorHarness.load() {
            guard let expected = vector.expected_hmac else { continue }
            let scheme = try #require(ForgeConfig.SignaturePayload(rawValue: vector.config.signature_payload))
            let payload = WebhookSigner.signedPayload(body: vector.bodyBytes, timestamp: vector.strippedTimestamp ?? "", scheme: scheme)
            #expect(Digest.hmacSHA256(key: Data(vector.secret.utf8), message: payload).hexString == expected, "\(vector.name)")
            checked += 1
        }
        #expect(checked > 40)
    }

    @Test func generatedPythonAgreesWithEveryVector() throws {
        let mismatches = try VectorHarness.pythonMismatches(vectorsURL: VectorHarness.vectorsURL,
                                                            webhookModule: try VectorHarness.renderedWebhookModule())
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    /// The harness must be able to fail: flip one expectation in a copy and it has to notice.
    @Test func harnessCatchesASingleFlippedExpectation() throws {
        // Edit the raw text, not a re-serialised copy: re-encoding would alter other vectors
        // (number formats, Unicode normalisation) and blur what is being tested.
        let original = try String(contentsOf: VectorHarness.vectorsURL, encoding: .utf8)
        let target = try #require(original.range(of: "\"verdict\": \"accept\""))
        let flipped = original.replacingCharacters(in: target, with: "\"verdict\": \"reject\"")
        let copy = try Repo.temporaryDirectory().appendingPathComponent("flipped.json")
        try flipped.write(to: copy, atomically: true, encoding: .utf8)
        let flippedName = try VectorHarness.load(copy).first { $0.expected.verdict == "reject" && $0.expected.reason == "ok" }?.name
        let mismatches = try VectorHarness.pythonMismatches(vectorsURL: copy, webhookModule: try VectorHarness.renderedWebhookModule())
        #expect(mismatches.count == 1, "\(mismatches)")
        #expect(flippedName != nil && mismatches.first?.hasPrefix(flippedName!) == true)
    }

    /// Without python3 on PATH the harness names the missing program and the fix instead of
    /// an exit status from `env`.
    @Test func aMissingInterpreterIsNamedWithItsFix() throws {
        let error = try #require(throws: MissingProgram.self) {
            try run("python3", ["-c", "pass"], environment: ["PATH": Repo.url(".build/test-scratch/no-programs-here").path])
        }
        #expect(error.description.hasPrefix("python3 is not on PATH"))
        #expect(error.description.contains("install Python 3.9 or newer"))
    }

    @Test func signerOutputVerifiesWithTheGeneratedPython() throws {
        let signer = WebhookSigner(secret: "whsec_local-test", payload: .timestampDotBody, unit: .milliseconds)
        let body = Data(#"{"id":"evt_1","type":"payment.captured","data":{"amount":"12.50"}}"#.utf8)
        let date = Date(timeIntervalSince1970: 1_700_000_000)
        let headers = Dictionary(uniqueKeysWithValues: signer.headers(body: body, at: date).map { ($0.name, $0.value) })
        let script = """
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location('webhook', sys.argv[1]); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        v = m.verify_signature('whsec_local-test', open(sys.argv[2], 'rb').read(), sys.argv[3], sys.argv[4], 1700000000.0,
                               payload_scheme='timestamp.body', timestamp_unit='ms', tolerance_seconds=300)
        print(v.accepted, v.reason)
        """
        let folder = try Repo.temporaryDirectory()
        try body.write(to: folder.appendingPathComponent("body.json"))
        let result = try run("python3", ["-c", script, try VectorHarness.renderedWebhookModule().path, folder.appendingPathComponent("body.json").path,
                                         headers["x-noderails-signature"]!, headers["x-noderails-timestamp"]!])
        #expect(String(decoding: result.stdout, as: UTF8.self) == "True ok\n", "\(result.stderr)")
    }
}
