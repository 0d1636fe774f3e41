import CCurl
import FoundationEssentials
import PretixForge

/// One webhook delivery over HTTP(S), as NodeRails makes it: a POST that follows no redirect.
///
/// libcurl with the OpenSSL the tool already links for hashes: the wheel's binary carries a
/// libcurl built with HTTP and HTTPS only (scripts/build-libcurl.sh), a debug build uses the
/// system's. Certificates are verified (peer and host name, curl's defaults, never switched off).
struct WebhookTransport {
    struct Response {
        var status: Int
        var body: Data
    }

    /// The receiver's answer is shown to a person; more than this is cut off.
    static let bodyLimit = 1 << 20

    /// Where distributions keep the trusted certificates as one PEM file, looked up at run time:
    /// the wheel's binary runs on other distributions than the one it was built on.
    static let systemBundles = [
        "/etc/ssl/certs/ca-certificates.crt",  // Debian, Ubuntu
        "/etc/pki/tls/certs/ca-bundle.crt",  // Fedora, RHEL
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL 7 and later
        "/etc/ssl/ca-bundle.pem",  // openSUSE
        "/etc/ssl/cert.pem",  // Alpine
    ]

    var timeout: Double
    var trusting: String?

    func post(_ body: Data, headers: [(name: String, value: String)], to url: String) throws(ForgeError) -> Response {
        let trusted = try trustedCertificates()
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
        guard let curl = curl_easy_init() else {
            throw ForgeError("delivery failed: libcurl could not start", at: SourceLocation(file: url))
        }
        defer { curl_easy_cleanup(curl) }
        // "Expect:" with no value: curl would otherwise hold a larger body back until the receiver
        // answers 100 Continue, which a pretix behind a plain proxy may never do.
        var list: UnsafeMutablePointer<curl_slist>?
        for line in headers.map({ "\($0.name): \($0.value)" }) + ["Expect:"] {
            list = curl_slist_append(list, line)
        }
        defer { curl_slist_free_all(list) }
        let received = ReceivedBody(limit: Self.bodyLimit)
        let context = Unmanaged.passRetained(received)
        defer { context.release() }
        let message = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        message.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { message.deallocate() }

        let milliseconds = max(1, Int(timeout * 1000))
        var code = url.withCString { forge_curl_set_pointer(curl, CURLOPT_URL, $0) }
        code = code != CURLE_OK ? code : "http,https".withCString { forge_curl_set_pointer(curl, CURLOPT_PROTOCOLS_STR, $0) }
        for (option, value) in [(CURLOPT_TIMEOUT_MS, milliseconds), (CURLOPT_CONNECTTIMEOUT_MS, milliseconds),
                                (CURLOPT_NOSIGNAL, 1), (CURLOPT_FOLLOWLOCATION, 0), (CURLOPT_POST, 1)] where code == CURLE_OK {
            code = forge_curl_set_long(curl, option, value)
        }
        code = code != CURLE_OK ? code : forge_curl_set_pointer(curl, CURLOPT_HTTPHEADER, list)
        code = code != CURLE_OK ? code : forge_curl_set_pointer(curl, CURLOPT_ERRORBUFFER, message)
        code = code != CURLE_OK ? code : forge_curl_set_write_function(curl, ReceivedBody.append)
        code = code != CURLE_OK ? code : forge_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        code = code != CURLE_OK ? code : forge_curl_set_offset(curl, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
        guard code == CURLE_OK else {
            throw ForgeError("delivery failed: \(Self.describe(code, message))", at: SourceLocation(file: url))
        }
        code = trusted.withUnsafeBytes { pem in
            var blob = curl_blob(data: UnsafeMutableRawPointer(mutating: pem.baseAddress), len: pem.count, flags: UInt32(CURL_BLOB_NOCOPY))
            let set = pem.isEmpty ? CURLE_OK : forge_curl_set_pointer(curl, CURLOPT_CAINFO_BLOB, &blob)
            return set != CURLE_OK ? set : body.withUnsafeBytes { bytes in
                // An empty body still needs a pointer, or curl would read the body from stdin.
                let fields = forge_curl_set_pointer(curl, CURLOPT_POSTFIELDS, bytes.baseAddress ?? UnsafeRawPointer(message))
                return fields != CURLE_OK ? fields : curl_easy_perform(curl)
            }
        }
        guard code == CURLE_OK else {
            throw ForgeError("delivery failed: \(Self.describe(code, message))", at: SourceLocation(file: url))
        }
        var status = 0
        _ = forge_curl_get_long(curl, CURLINFO_RESPONSE_CODE, &status)
        return Response(status: status, body: received.data)
    }

    /// The system's trusted certificates and those of --ca-file, as one PEM text; empty when
    /// there are none, and curl then trusts nothing.
    private func trustedCertificates() throws(ForgeError) -> Data {
        var pem = Self.systemBundles.lazy.compactMap { FileManager.default.contents(atPath: $0) }.first ?? Data()
        if let trusting {
            guard let own = FileManager.default.contents(atPath: trusting) else {
                throw ForgeError("cannot read the certificate file", at: SourceLocation(file: trusting), keyPath: "--ca-file",
                                 fix: "pass a PEM file holding the server's certificate or its CA")
            }
            pem.append(contentsOf: Array("\n".utf8) + own)
        }
        return pem
    }

    /// The cases a person meets get words; the rest libcurl's own message.
    static func describe(_ code: CURLcode, _ message: UnsafePointer<CChar>) -> String {
        let detail = message.pointee != 0 ? String(cString: message) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT: return "no answer in time (\(detail))"
        case CURLE_COULDNT_CONNECT: return "could not connect (\(detail))"
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM:
            return "TLS failed (\(detail))"
        default: return detail
        }
    }
}

/// The receiver's answer, collected by libcurl's write callback up to a limit.
private final class ReceivedBody {
    let limit: Int
    var data = Data()

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes every byte (curl ends the transfer otherwise) and keeps the first `limit`.
    static let append: forge_curl_write_function = { bytes, size, count, context in
        let received = Unmanaged<ReceivedBody>.fromOpaque(context!).takeUnretainedValue()
        let length = size * count
        if let bytes, received.data.count < received.limit {
            received.data.append(UnsafeRawPointer(bytes).assumingMemoryBound(to: UInt8.self),
                                 count: min(length, received.limit - received.data.count))
        }
        return length
    }
}
