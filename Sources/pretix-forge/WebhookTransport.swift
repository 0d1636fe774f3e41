// Only with the WebhookSend trait (Package.swift): it is what needs SwiftNIO and BoringSSL.
#if WebhookSend
import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOSSL
import PretixForge

/// One webhook delivery over HTTP(S), as NodeRails makes it: a POST that follows no redirect.
///
/// AsyncHTTPClient rather than URLSession: Foundation's URLSession goes through libcurl, which
/// cannot be linked into the single static binary the tool ships as; SwiftNIO's TLS is
/// BoringSSL, built from source into the binary.
struct WebhookTransport {
    struct Response {
        var status: Int
        var body: Data
    }

    /// The receiver's answer is shown to a person; more than this is cut off.
    static let bodyLimit = 1 << 20

    var timeout: Double
    var trusting: String?

    func post(_ body: Data, headers: [(name: String, value: String)], to url: String) throws(ForgeError) -> Response {
        let client: HTTPClient
        do {
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: try configuration())
        } catch {
            throw ForgeError("cannot use the certificate file: \(error)", at: SourceLocation(file: trusting ?? "--ca-file"), keyPath: "--ca-file",
                             fix: "pass a PEM file holding the server's certificate or its CA")
        }
        defer { try? client.syncShutdown() }
        do {
            let request = try HTTPClient.Request(url: url, method: .POST, headers: HTTPHeaders(headers.map { ($0.name, $0.value) }),
                                                 body: .data(body))
            let deadline = NIODeadline.now() + .milliseconds(Int64(timeout * 1000))
            let response = try client.execute(request: request, deadline: deadline).wait()
            let received = response.body.map { Data($0.readableBytesView.prefix(Self.bodyLimit)) } ?? Data()
            return Response(status: Int(response.status.code), body: received)
        } catch {
            throw ForgeError("delivery failed: \(Self.describe(error))", at: SourceLocation(file: url))
        }
    }

    private func configuration() throws -> HTTPClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trusting {
            tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(trusting))]
        }
        let wait = TimeAmount.milliseconds(Int64(timeout * 1000))
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow,
                                                     timeout: .init(connect: wait, read: wait))
        // One delivery, for a person watching it: a refused connection or an untrusted
        // certificate is reported at once instead of retried until the timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// NIO's errors print as type names; the cases a person meets get words.
    static func describe(_ error: Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout: return "no answer in time"
            case .connectTimeout: return "could not connect in time"
            default: return String(describing: error)
            }
        }
        if let error = error as? NIOSSLError { return "TLS failed (\(error))" }
        return String(describing: error)
    }
}
#endif
