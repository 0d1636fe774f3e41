import ArgumentParser
import FoundationEssentials
import PretixForge

struct Webhook: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "Sign or send a NodeRails webhook delivery, to test a deployment.",
        discussion: "The signing secret is read from an environment variable (default NODERAILS_WEBHOOK_SECRET) or a file, never from the command line, where it would land in shell history and process lists.",
        subcommands: [Sign.self, Send.self]
    )
}

struct DeliveryOptions: ParsableArguments {
    @OptionGroup var configOption: ConfigOption

    @Option(help: "Event type, e.g. payment.captured, payment_intent.captured, payment.refunded, checkout_session.expired.")
    var type: String = "payment.captured"

    @Option(help: "Checkout session id (checkoutSessionId).")
    var sessionId: String = "cs_test_0001"

    @Option(help: "Payment intent id (paymentIntentId).")
    var intentId: String = "pi_test_0001"

    @Option(help: "Amount as a decimal string.")
    var amount: String = "10.00"

    @Option(help: "ISO 4217 currency. Default: the config's currency.")
    var currency: String?

    @Option(help: "Event id (default: derived from the other values).")
    var eventId: String?

    @Option(help: "Refund id, for payment.refunded.")
    var refundId: String?

    @Option(help: ArgumentHelp("Send this file's bytes as the body instead of building one.", valueName: "file"))
    var bodyFile: String?

    @Option(help: "Environment variable holding the signing secret.")
    var secretEnv: String = "NODERAILS_WEBHOOK_SECRET"

    @Option(help: ArgumentHelp("File holding the signing secret (trailing newline ignored).", valueName: "file"))
    var secretFile: String?

    @Option(help: "Signing time as a Unix timestamp in seconds (default: now).")
    var at: Double?

    func secret() throws(ForgeError) -> String {
        if let secretFile {
            guard let text = try? String(contentsOfFile: secretFile, encoding: .utf8) else {
                throw ForgeError("cannot read the secret file", at: SourceLocation(file: secretFile))
            }
            let secret = text.trimming(.newlines)
            guard !secret.isEmpty else { throw ForgeError("the secret file is empty", at: SourceLocation(file: secretFile)) }
            return secret
        }
        guard let secret = ProcessInfo.processInfo.environment[secretEnv], !secret.isEmpty else {
            throw ForgeError("no signing secret", at: SourceLocation(file: "environment"), keyPath: secretEnv,
                             fix: "export \(secretEnv)=<the webhook signing secret from the NodeRails dashboard>, or pass --secret-file FILE")
        }
        return secret
    }

    /// The signed delivery: headers and exact body bytes.
    func delivery() throws(ForgeError) -> (headers: [(name: String, value: String)], body: Data) {
        let config = try Pipeline.loadConfig(configOption.config)
        let date = at.map { Date(timeIntervalSince1970: $0) } ?? Date()
        let body: Data
        if let bodyFile {
            guard let data = FileManager.default.contents(atPath: bodyFile) else {
                throw ForgeError("cannot read the body file", at: SourceLocation(file: bodyFile))
            }
            body = data
        } else {
            body = WebhookEvent(type: type, eventID: eventId, sessionID: sessionId, intentID: intentId, amount: amount,
                                currency: currency ?? config.noderails.currency, refundID: refundId).body(createdAt: date)
        }
        let signer = WebhookSigner(secret: try secret(), payload: config.webhook.signaturePayload, unit: config.webhook.timestampUnit)
        return (signer.headers(body: body, at: date), body)
    }
}

struct Sign: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sign", abstract: "Print the headers and body of a correctly signed delivery.")

    @OptionGroup var options: DeliveryOptions

    func run() throws {
        let delivery = try options.delivery()
        var output = delivery.headers.map { "\($0.name): \($0.value)\n" }.joined() + "\n"
        StandardStream.output.write(output)
        StandardStream.output.write(delivery.body)
        output = delivery.body.last == UInt8(ascii: "\n") ? "" : "\n"
        StandardStream.output.write(output)
    }
}

struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "POST a signed delivery to URL and print the response.")

    @Argument(help: "The webhook URL, e.g. https://pretix.example/org/event/noderails/webhook/")
    var url: String

    @OptionGroup var options: DeliveryOptions

    @Option(help: "Seconds to wait for the response (NodeRails waits 15).")
    var timeout: Double = 15

    @Option(help: ArgumentHelp("Also trust the certificates in this PEM file, e.g. a test deployment's self-signed one.",
                               valueName: "file"))
    var caFile: String?

    func run() throws {
        guard let target = URL(string: url), let scheme = target.scheme, ["http", "https"].contains(scheme), target.host != nil else {
            throw ForgeError("'\(url)' is not an http(s) URL", at: SourceLocation(file: "command line"), fix: "pass the full webhook URL")
        }
        guard timeout > 0 else {
            throw ForgeError("--timeout must be more than 0 seconds", at: SourceLocation(file: "command line"), keyPath: "--timeout",
                             fix: "pass the seconds to wait, e.g. --timeout 15")
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ForgeError("cannot read the certificate file", at: SourceLocation(file: caFile), keyPath: "--ca-file",
                             fix: "pass a PEM file holding the server's certificate or its CA")
        }
        let delivery = try options.delivery()
        let response = try WebhookTransport(timeout: timeout, trusting: caFile).post(delivery.body, headers: delivery.headers, to: url)
        // One write: print() buffers, StandardStream does not, so mixing them reorders piped output.
        var output = Data("HTTP \(response.status)\n".utf8) + response.body
        if response.body.last != UInt8(ascii: "\n") { output.append(UInt8(ascii: "\n")) }
        StandardStream.output.write(output)
        if !(200..<300).contains(response.status) { throw ExitCode(1) }
    }
}
