import Foundation
import Testing
@testable import PretixForge

@Suite("Config: loading and validation")
struct ConfigTests {
    @Test func embeddedDefaultLoads() throws {
        let config = try ConfigLoader.loadDefault()
        #expect(config.package.name == "pretix-noderails")
        #expect(config.package.module == "pretix_noderails")
        #expect(config.provider.webhookPath == "noderails")
        #expect(config.noderails.currency == "USD")
        #expect(config.webhook.signaturePayload == .timestampDotBody)
        #expect(config.package.licenseText.contains("Apache License"))
    }

    /// The loops that replaced the regexes accept exactly what the regexes accepted.
    @Test func addressLicenceAndColourChecksAgreeWithTheirRegexes() {
        let emails = ["a@b.c", "dev@example.org", "a.b+c@sub.example.co-op", "@b.c", "a@", "a@b", "a@.c", "a@b.", "a@b.c.",
                      "a b@c.d", "a@b@c.d", "a@b.c_d", "\"a\"@b.c", "a@b,c.d", "a\u{2003}b@c.d", "ü@exämple.de", "a@b..c", "a@b.-"]
        let email = /[^@\s"<>,]+@[^@\s"<>,]+\.[A-Za-z0-9-]+/
        for text in emails {
            #expect(ConfigReader.isEmailAddress(text) == (text.wholeMatch(of: email) != nil), "\(text)")
        }
        let licences = ["MIT", "Apache-2.0", "GPL-3.0-or-later WITH GCC-exception-3.1", "MIT OR Apache-2.0 AND BSD-3-Clause", "",
                        "MIT ", " MIT", "MIT  OR Apache-2.0", "MIT or Apache-2.0", "MIT OR", "MIT AND AND", "(MIT)", "LicenseRef-x+"]
        let licence = /[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*/
        for text in licences {
            #expect(ConfigReader.isLicenseExpression(text) == (text.wholeMatch(of: licence) != nil), "\(text)")
        }
        let colours = ["#fff", "#ffff", "#2f6fed", "#2F6FED80", "#ff", "#fffff", "#ggg", "fff", "#2f6fed;", "#"]
        let hex = /#([0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})/
        for text in colours {
            #expect(ConfigReader.isHexColor(text) == (text.wholeMatch(of: hex) != nil), "\(text)")
        }
    }

    @Test func starterFileEqualsEmbeddedDefault() throws {
        let onDisk = try String(contentsOf: Repo.url("Examples/noderails.toml"), encoding: .utf8)
        #expect(onDisk == ConfigLoader.defaultSource)
    }

    @Test func defaultsApplyToOptionalKeys() throws {
        let omitted = ["webhook_path", "currency", "poll_interval_seconds", "http_timeout_seconds", "signature_payload",
                       "timestamp_unit", "tolerance_seconds", "license"]
        // A new identifier, so a defaulted webhook path is told apart from the stock "noderails".
        var replacements = Dictionary(uniqueKeysWithValues: omitted.map { ($0, "") })
        replacements["identifier"] = "\"acme_pay\""
        let source = config(replacing: replacements)
        for key in omitted {
            #expect(!source.split(separator: "\n").contains { $0.hasPrefix("\(key) =") }, "\(key) is still in the config")
        }
        let defaulted = try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil)
        #expect(defaulted.provider.webhookPath == "acme_pay")
        #expect(defaulted.noderails.currency == "USD")
        #expect(defaulted.noderails.pollIntervalSeconds == 3)
        #expect(defaulted.noderails.httpTimeoutSeconds == 10)
        #expect(defaulted.webhook.signaturePayload == .timestampDotBody)
        #expect(defaulted.webhook.timestampUnit == .milliseconds)
        #expect(defaulted.webhook.toleranceSeconds == 300)
        #expect(defaulted.package.license == "Apache-2.0")
        // The same keys given other values are read, so the defaults above come from omitting them.
        let given = try ConfigLoader.load(source: config(replacing: [
            "webhook_path": "\"pay-acme\"", "currency": "\"EUR\"", "poll_interval_seconds": "7", "http_timeout_seconds": "20",
            "signature_payload": "\"body\"", "timestamp_unit": "\"s\"", "tolerance_seconds": "60",
        ]), file: "forge.toml", baseDirectory: nil)
        #expect(given.provider.webhookPath == "pay-acme" && given.noderails.currency == "EUR")
        #expect(given.noderails.pollIntervalSeconds == 7 && given.noderails.httpTimeoutSeconds == 20)
        #expect(given.webhook.signaturePayload == .body && given.webhook.timestampUnit == .seconds && given.webhook.toleranceSeconds == 60)
    }

    /// One case per class of error: the key path it must name and a fragment of the message.
    static let errorCases: [(String, String, String)] = [
        (config(appending: "\n[package.extra]\n"), "package.extra", "unknown key"),
        (config(replacing: ["summray": ""], appending: "\n[noderails]\n"), "noderails", "invalid TOML"),
        (config(replacing: ["version": "1"]).replacingOccurrences(of: "homepage =", with: "homepag ="), "package.homepag", "did you mean 'package.homepage'"),
        (config(replacing: ["poll_interval_seconds": "\"3\""]), "noderails.poll_interval_seconds", "expected an integer"),
        (config(replacing: ["summary": "42"]), "package.summary", "expected a string"),
        (config(replacing: ["module": "\"pretix-noderails\""]), "package.module", "not a Python identifier"),
        (config(replacing: ["module": "\"import\""]), "package.module", "Python keyword"),
        (config(replacing: ["module": "\"json\""]), "package.module", "standard-library"),
        (config(replacing: ["module": "\"django\""]), "package.module", "module of Django, which pretix depends on"),
        (config(replacing: ["module": "\"pretix\""]), "package.module", "pretix or Django"),
        (config(replacing: ["module": "\"jwt\""]), "package.module", "module of PyJWT, which pretix depends on"),
        (config(replacing: ["module": "\"stripe\""]), "package.module", "app label of pretix.plugins.stripe, which pretix installs"),
        (config(replacing: ["module": "\"sessions\""]), "package.module", "app label of django.contrib.sessions"),
        (config(replacing: ["module": "\"pretixbase\""]), "package.module", "app label of pretix.base"),
        (config(replacing: ["identifier": "\"banktransfer\""]), "provider.identifier", "payment provider of pretix.plugins.banktransfer"),
        (config(replacing: ["identifier": "\"stripe_sepa_debit\""]), "provider.identifier", "share the settings payment_stripe_sepa_debit_*"),
        (config(replacing: ["identifier": "\"giftcard\""]), "provider.identifier", "fix: choose another, e.g. \"giftcard_crypto\""),
        (config(replacing: ["version": "\"\""]), "package.version", "must not be empty"),
        (config(replacing: ["pretix_min_version": "\" \""]), "package.pretix_min_version", "must not be empty"),
        (config(replacing: ["version": "\"1.0-final\""]), "package.version", "not a PEP 440 version"),
        (config(replacing: ["version": "\"1.0.0-rc.1\""]), "package.version", "write \"1.0.0rc1\""),
        (config(replacing: ["pretix_min_version": "\"2024.6.0\""]), "package.pretix_min_version", "older than the oldest pretix the plugin is tested on"),
        (config(replacing: ["api_base_url": "\"http://api.noderails.com\""]), "noderails.api_base_url", "does not use https"),
        (config(replacing: ["payment_ui_url": "\"pay.noderails.com\""]), "noderails.payment_ui_url", "not an absolute URL"),
        (config(replacing: ["currency": "\"XYZ\""]), "noderails.currency", "not an ISO 4217"),
        (config(replacing: ["http_timeout_seconds": "0"]), "noderails.http_timeout_seconds", "out of range"),
        (config(replacing: ["tolerance_seconds": "99999"]), "webhook.tolerance_seconds", "out of range"),
        (config(replacing: ["timestamp_unit": "\"us\""]), "webhook.timestamp_unit", "not one of the accepted values"),
        (config(replacing: ["confirm_on": "\"captured\""]), "webhook.confirm_on", "expected an array of event names"),
        (config(replacing: ["confirm_on": "[\"authorised\", \"captured\"]"]), "webhook.confirm_on", "'authorised' is not a NodeRails event"),
        (config(replacing: ["confirm_on": "[\"captured\", 1]"]), "webhook.confirm_on", "an integer is not a NodeRails event"),
        (config(replacing: ["confirm_on": "[\"captured\", \"captured\"]"]), "webhook.confirm_on", "listed twice"),
        (config(replacing: ["confirm_on": "[\"authorized\"]"]), "webhook.confirm_on", "\"captured\" must be listed"),
        (config(replacing: ["confirm_on": "[]"]), "webhook.confirm_on", "\"captured\" must be listed"),
        (config(appending: "\nwebhook_secret = \"whsec_abc\"\n"), "repository.webhook_secret", "secrets are never part of the config"),
        (config(replacing: ["author": "\"nr_live_sk_123\""]), "package.author", "looks like a NodeRails credential"),
        (config(appending: "\n[credentials]\n"), "credentials", "unknown table"),
        (config(replacing: ["summary": "\"two\\nlines\""]), "package.summary", "single line"),
        (config(replacing: ["public_name": "\"bell\\u0007\""]), "provider.public_name", "control character"),
        (config(replacing: ["public_name": "\"nul\\u0000here\""]), "provider.public_name", "NUL"),
        (config(replacing: ["identifier": "\"Node Rails\""]), "provider.identifier", "not a valid provider identifier"),
        (config(replacing: ["webhook_path": "\"a/b\""]), "provider.webhook_path", "not a URL segment"),
        (config(replacing: ["name": "\"-bad-\""]), "package.name", "not a valid distribution name"),
        (config(replacing: ["author_email": "\"nobody\""]), "package.author_email", "not an e-mail address"),
        (config(replacing: ["license": "\"MIT\""]), "package.license", "Apache-2.0 only"),
        (config(replacing: ["name": ""]), "package.name", "missing required key"),
        (config(replacing: ["accent_color": "\"red; background: url(x)\""]), "branding.accent_color", "not a CSS colour"),
        (config(replacing: ["waiting_message": "{ en = \"Waiting\" }"]), "branding.waiting_message", "has no 'de' translation"),
        (config(replacing: ["waiting_message": "{ en = \"a\", de = \"b\", EN_us = \"c\" }"]), "branding.waiting_message.EN_us", "did you mean 'en'?"),
        (config(replacing: ["waiting_message": "{ en = \"a\", de = \"b\", xx = \"c\" }"]), "branding.waiting_message.xx", "not a language pretix offers"),
        (config(replacing: ["confirm_heading": "{ en = \"a\", de = \"b\", pt_BR = \"c\" }"]), "branding.confirm_heading.pt_BR", "did you mean 'pt-br'?"),
        (config(replacing: ["payment_ui_url": "\"https://pay.noderails.com:99999\""]), "noderails.payment_ui_url", "has port 99999"),
        (config(replacing: ["api_base_url": "\"http://localhost:0\""]), "noderails.api_base_url", "has port 0"),
        (config(replacing: ["api_base_url": "\"https://api.noderails.com:99999999999999999999\""]), "noderails.api_base_url", "ports run from 1 to 65535"),
        (config(replacing: ["homepage": "\"http://localhost\""]), "package.homepage", "does not use https"),
        (config(replacing: ["success_message": "\"Paid\""]), "branding.success_message", "expected a table of translations"),
        (config(replacing: ["text_color": "\"#fff\"", "# logo": "\"logo.gif\""]), "branding.logo", "neither SVG nor PNG"),
        (config(replacing: ["unmanaged": "[\"/docs/**\"]"]), "repository.unmanaged[0]", "relative to the tree"),
        (config(replacing: ["unmanaged": "[\"docs/**\", \"../notes\"]"]), "repository.unmanaged[1]", "'..' segments"),
        (config(replacing: ["unmanaged": "[\"docs/**\", 3]"]), "repository.unmanaged[1]", "expected a string"),
        (config(replacing: ["unmanaged": "[\"docs/a**\"]"]), "repository.unmanaged[0]", "segment of its own"),
        (config(replacing: ["unmanaged": "\"docs/**\""]), "repository.unmanaged", "expected an array of path patterns"),
        (config(replacing: ["gitignore": "\"yes\""]), "repository.gitignore", "expected true or false"),
        (config(appending: "\nforge_repository = \"https://github.com/noderails/pretix-forge\"\n"),
         "repository.forge_repository", "install the recorded pretix-forge with `pip install"),
        (config(replacing: ["workflows": ""], appending: "\nworkflow = false\n"), "repository.workflow", "did you mean 'repository.workflows'"),
        (chains("base = { name = \"Base\" }"), "noderails.chains.base", "is not a chain id"),
        (chains("08453 = { name = \"Base\" }"), "noderails.chains.08453", "is not a chain id"),
        (chains("8453 = \"Base\""), "noderails.chains.8453", "expected a table"),
        (chains("8453 = { explorer = \"https://basescan.org/tx/{hash}\" }"), "noderails.chains.8453", "has no name"),
        (chains("8453 = { name = \"Base\", url = \"https://basescan.org/tx/{hash}\" }"), "noderails.chains.8453.url", "unknown key"),
        (chains("8453 = { name = \"Base\\nChain\" }"), "noderails.chains.8453.name", "single line"),
        (chains("8453 = { name = \"Base\", explorer = \"http://basescan.org/tx/{hash}\" }"), "noderails.chains.8453.explorer", "not an https URL"),
        (chains("8453 = { name = \"Base\", explorer = \"javascript:alert('{hash}')\" }"), "noderails.chains.8453.explorer", "not an https URL"),
        (chains("8453 = { name = \"Base\", explorer = \"https://basescan.org/tx/\" }"), "noderails.chains.8453.explorer", "{hash} exactly once"),
        (chains("8453 = { name = \"Base\", explorer = \"https://{hash}.basescan.org/\" }"), "noderails.chains.8453.explorer", "into the host"),
        (chains("8453 = { name = \"Base\", explorer = \"https://basescan.org:70000/tx/{hash}\" }"), "noderails.chains.8453.explorer", "has port 70000"),
        (chains("8453 = { name = \"Base\", explorer = \"https://basescan.org/tx/{hash}\\\"onmouseover=x\" }"), "noderails.chains.8453.explorer", "not an https URL"),
    ]

    static func chains(_ lines: String) -> String {
        config(appending: "\n[noderails.chains]\n\(lines)\n")
    }

    @Test func chainsExtendTheBuiltInTableOfTheRenderedPlugin() throws {
        let source = Self.chains("""
            8453 = { name = "Base (ours)", explorer = "https://basescan.org/tx/{hash}?from=pretix&x=1" }
            324 = { name = "zkSync Era" }
            10 = { name = "OP", explorer = "" }
            """)
        let config = try ConfigLoader.load(source: source, file: "forge.toml", baseDirectory: nil)
        #expect(config.noderails.chains.map(\.id) == [10, 324, 8453])
        #expect(config.noderails.chains.map(\.explorer) == ["", "", "https://basescan.org/tx/{hash}?from=pretix&x=1"])
        let texts = String(decoding: try #require(try Pipeline.render(config).files["pretix_noderails/texts.py"]), as: UTF8.self)
        #expect(texts.contains("CHAIN_NAMES = {'10': 'OP', '324': 'zkSync Era', '8453': 'Base (ours)'}\n"), "\(texts)")
        #expect(texts.contains("CHAIN_EXPLORERS = {'10': '', '324': '', '8453': 'https://basescan.org/tx/{hash}?from=pretix&x=1'}\n"), "\(texts)")
        let stock = try ConfigLoader.loadDefault()
        #expect(stock.noderails.chains.isEmpty)
        #expect(config.digest != stock.digest)
    }

    @Test func chainErrorNamesFileLineKeyAndFix() {
        let source = Self.chains("8453 = { name = \"Base\", explorer = \"http://basescan.org/tx/{hash}\" }")
        let found = diagnostics(of: source)
        #expect(found.count == 1)
        let text = found.first?.description ?? ""
        let line = source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("8453 =") }.map { $0 + 1 }
        #expect(line != nil && text.hasPrefix("forge.toml:\(line!)"), "\(text)")
        #expect(text.contains("noderails.chains.8453.explorer") && text.contains("fix: write it like \"https://basescan.org/tx/{hash}\""), "\(text)")
    }

    @Test(arguments: errorCases.indices)
    func eachErrorClassNamesItsKeyPath(_ index: Int) {
        let (source, keyPath, fragment) = Self.errorCases[index]
        let found = diagnostics(of: source)
        #expect(!found.isEmpty, "expected an error for \(keyPath)")
        let matching = found.filter { ($0.keyPath ?? "").hasPrefix(keyPath) || $0.message.contains(fragment) }
        #expect(matching.contains { $0.description.contains(fragment) }, "no '\(fragment)' in: \(found.map(\.description))")
        if !fragment.contains("TOML") {
            #expect(matching.contains { $0.keyPath == keyPath && $0.location.line != nil }, "key path \(keyPath) with a line in: \(found)")
        }
    }

    @Test(arguments: [
        ("", "('authorized', 'captured')"),
        ("[\"captured\", \"authorized\"]", "('authorized', 'captured')"),
        ("[\"captured\"]", "('captured',)"),
    ])
    func confirmOnChoosesTheConfirmingEvents(_ value: String, _ rendered: String) throws {
        let config = try ConfigLoader.load(source: config(replacing: ["confirm_on": value]), file: "forge.toml", baseDirectory: nil)
        #expect(config.webhook.confirmOn.contains(.captured))
        #expect(config.webhook.confirmOn.contains(.authorized) == rendered.contains("authorized"))
        let tree = try Pipeline.render(config)
        let conf = String(decoding: try #require(tree.files["pretix_noderails/conf.py"]), as: UTF8.self)
        #expect(conf.contains("CONFIRM_ON = \(rendered)\n"), "\(conf)")
    }

    @Test func confirmOnErrorNamesFileLineKeyAndFix() {
        let found = diagnostics(of: config(replacing: ["confirm_on": "[\"authorized\"]"]))
        #expect(found.count == 1)
        let text = found.first?.description ?? ""
        let line = ConfigLoader.defaultSource.split(separator: "\n", omittingEmptySubsequences: false)
            .firstIndex { $0.hasPrefix("confirm_on =") }.map { $0 + 1 }
        #expect(line != nil && text.hasPrefix("forge.toml:\(line!)"), "\(text)")
        #expect(text.contains("webhook.confirm_on") && text.contains("fix: write confirm_on = [\"authorized\", \"captured\"]"), "\(text)")
    }

    /// Lines appended to the stock config, the index of the one that nests too deep and its key.
    static let deepNesting: [([String], Int, String)] = [
        (["x" + String(repeating: ".a", count: 30_000) + " = 1"], 0, "x.a.a.a"),
        (["[" + Array(repeating: "b", count: 100_000).joined(separator: ".") + "]"], 0, "b.b.b"),
        (["[[" + Array(repeating: "b", count: 300).joined(separator: ".") + "]]"], 0, "b.b.b"),
        (["[noderails.chains]", Array(repeating: "c", count: 255).joined(separator: ".") + " = 1"], 1, "c.c.c"),
        (["x = " + String(repeating: "{ a.a = ", count: 200) + "1" + String(repeating: " }", count: 200)], 0, "x"),
        (["x = [", String(repeating: "[", count: 300) + String(repeating: "]", count: 300), "]"], 1, "x"),
    ]

    /// toml++ caps arrays and inline tables, but dotted keys and headers this deep overflowed
    /// its stack and killed the process; every kind of nesting is now refused with its line.
    @Test(arguments: deepNesting.indices)
    func nestingBeyondTheLimitIsRefusedWithItsLine(_ index: Int) {
        let (appended, deepLine, key) = Self.deepNesting[index]
        let found = diagnostics(of: config(appending: "\n" + appended.joined(separator: "\n") + "\n"))
        #expect(found.count == 1)
        let text = found.first?.description ?? ""
        let line = config().split(separator: "\n", omittingEmptySubsequences: false).count + 1 + deepLine
        #expect(text.hasPrefix("forge.toml:\(line): error: \(key)") && text.contains("more than 256 levels deep")
                && text.contains("fix: flatten it"), "\(text.prefix(300))")
    }

    /// Dots inside quoted keys and in values do not nest anything.
    @Test func quotedDotsAndValuesDoNotCountAsNesting() {
        let dotted = String(repeating: "a.", count: 300)
        #expect(TOMLPrescan(source: "\"\(dotted)\" = '\(dotted)'\nx = \"\"\"\n\(dotted)\"\"\"\n['\(dotted)'.b]\n").tooDeep == nil)
        #expect(TOMLPrescan(source: "x = 1 # \(dotted)\ny = [\"\(dotted)\", 1.5]\n").tooDeep == nil)
    }

    /// toml++ calls the line break an unterminated string runs into a forbidden control character.
    @Test(arguments: ["\"ACME", "'ACME", "\"ACME\\\"", "\"ACME \\\"quoted\\\""])
    func anUnterminatedStringIsNamedSo(_ value: String) {
        let source = config(replacing: ["author": value])
        let found = diagnostics(of: source)
        let line = source.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.hasPrefix("author =") }.map { $0 + 1 }
        #expect(found.count == 1)
        #expect(found.first?.description.hasPrefix("forge.toml:\(line!): error: invalid TOML: unterminated string") == true, "\(found)")
    }

    @Test func everyProblemIsReportedAtOnce() {
        let source = config(replacing: ["module": "\"class\"", "currency": "\"usd\"", "tolerance_seconds": "1"], appending: "\napi_key = \"x\"\n")
        let found = diagnostics(of: source).compactMap(\.keyPath)
        #expect(Set(found) == ["package.module", "noderails.currency", "webhook.tolerance_seconds", "repository.api_key"])
    }

    @Test func diagnosticsNameFileLineAndFix() {
        let found = diagnostics(of: config(replacing: ["currency": "\"usd\""]))
        #expect(found.count == 1)
        let text = found[0].description
        #expect(text.hasPrefix("forge.toml:"))
        #expect(text.contains("noderails.currency"))
        #expect(text.contains("fix: write it in upper case: \"USD\""))
    }

    /// compat.toml's oldest pretix bounds the claim from below: older releases, and its own
    /// pre-releases, are refused; it and anything newer are accepted.
    @Test func pretixClaimIsBoundedByTheOldestTestedRelease() {
        #expect(Compatibility.isOlder("2024.6.3", than: "2024.7.0"))
        #expect(Compatibility.isOlder("2024.7.0rc1", than: "2024.7.0"))
        #expect(Compatibility.isOlder("2024.7.0.dev0", than: "2024.7.0"))
        #expect(Compatibility.isOlder("2023.10", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("2024.7.0", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("2024.7", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("2024.7.0.post1", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("2024.10.0", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("2025.1.0rc1", than: "2024.7.0"))
        #expect(!Compatibility.isOlder("1!1.0", than: "2024.7.0"))
    }

    @Test func pep440Canonicalisation() {
        #expect(PEP440.canonical("1.0.0") == "1.0.0")
        #expect(PEP440.canonical("v1.0.0-RC.1") == "1.0.0rc1")
        #expect(PEP440.canonical("2024.07.0") == "2024.7.0")
        #expect(PEP440.canonical("1.0-1") == "1.0.post1")
        #expect(PEP440.canonical("1.0.dev") == "1.0.dev0")
        #expect(PEP440.canonical("1.0+local") == nil)
        #expect(PEP440.canonical("one") == nil)
        #expect(PEP440.canonical("01.002") == "1.2")
        #expect(PEP440.canonical("1..0") == nil)
        #expect(PEP440.canonical(" 1.0 ") == "1.0")
    }

    @Test(arguments: [
        ("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "could run code"),
        ("<svg xmlns='http://www.w3.org/2000/svg' onload='x()'/>", "event handler"),
        ("<svg xmlns='http://www.w3.org/2000/svg' xmlns:xlink='http://www.w3.org/1999/xlink'><use xlink:href='https://evil.example/x.svg#a'/></svg>", "references"),
        ("<html/>", "not <svg>"),
        ("<svg", "not well-formed"),
        ("<svg xmlns='http://www.w3.org/2000/svg'><style>rect { fill: url(https://evil.example/x.svg#p) }</style></svg>", "CSS loads url("),
        ("<svg xmlns='http://www.w3.org/2000/svg'><style>@import \"https://evil.example/x.css\";</style></svg>", "@import"),
        ("<svg xmlns='http://www.w3.org/2000/svg'><rect style='fill:url( \"//evil.example/p\")'/></svg>", "CSS loads url("),
    ])
    func unsafeLogosAreRefused(_ svg: String, _ fragment: String) throws {
        let folder = try Repo.temporaryDirectory()
        try svg.write(to: folder.appendingPathComponent("logo.svg"), atomically: true, encoding: .utf8)
        let source = config(replacing: ["# logo": "\"logo.svg\""])
        try source.write(to: folder.appendingPathComponent("forge.toml"), atomically: true, encoding: .utf8)
        do {
            _ = try ConfigLoader.load(file: folder.appendingPathComponent("forge.toml").path)
            Issue.record("the logo should have been refused")
        } catch {
            #expect(error.description.contains("branding.logo") && error.description.contains(fragment), "\(error)")
        }
    }

    /// A PNG's signature, its IHDR chunk (CRC not checked) and, unless cut short, IEND.
    private static func png(width: UInt32, height: UInt32, complete: Bool = true) -> Data {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]
        for value in [width, height] { bytes += withUnsafeBytes(of: value.bigEndian, Array.init) }
        bytes += [8, 6, 0, 0, 0, 0, 0, 0, 0]
        if complete { bytes += [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82] }
        return Data(bytes)
    }

    @Test(arguments: [
        (png(width: 16, height: 16, complete: false), "cut short"),
        (png(width: 0, height: 0), "claims 0×0 pixels"),
        (png(width: 1 << 31, height: 1 << 31), "claims 2147483648×2147483648 pixels"),
    ])
    func brokenPNGLogosAreRefused(_ data: Data, _ fragment: String) throws {
        let folder = try Repo.temporaryDirectory()
        try data.write(to: folder.appendingPathComponent("logo.png"))
        let source = config(replacing: ["# logo": "\"logo.png\"", "# logo_alt": "{ en = \"Logo\" }"])
        try source.write(to: folder.appendingPathComponent("forge.toml"), atomically: true, encoding: .utf8)
        #expect(LogoCheck.pngProblem(Self.png(width: 16, height: 16)) == nil)
        do {
            _ = try ConfigLoader.load(file: folder.appendingPathComponent("forge.toml").path)
            Issue.record("the logo should have been refused")
        } catch {
            #expect(error.description.contains("branding.logo") && error.description.contains(fragment), "\(error)")
        }
    }

    @Test func brandedLogoIsCopiedIntoStaticFiles() throws {
        let folder = try Repo.temporaryDirectory()
        try "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'><rect width='1' height='1'/></svg>"
            .write(to: folder.appendingPathComponent("brand.svg"), atomically: true, encoding: .utf8)
        try config(replacing: ["# logo": "\"brand.svg\"", "# logo_alt": "{ en = \"Forge & Co\", de = \"Forge & Co\" }"])
            .write(to: folder.appendingPathComponent("forge.toml"), atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(file: folder.appendingPathComponent("forge.toml").path)
        #expect(config.branding.logo?.fileName == "logo.svg")
        #expect(config.branding.logo?.altText == ["en": "Forge & Co", "de": "Forge & Co"])
        let tree = try Pipeline.render(config)
        #expect(tree.files["pretix_noderails/static/pretix_noderails/logo.svg"] == config.branding.logo?.data)
        let texts = String(decoding: tree.files["pretix_noderails/texts.py"] ?? Data(), as: UTF8.self)
        #expect(texts.contains("LOGO_ALT = {'de': 'Forge & Co', 'en': 'Forge & Co'}"))
    }

    @Test func aLogoNeedsItsTextAlternativeAndTheAlternativeItsLogo() throws {
        let folder = try Repo.temporaryDirectory()
        try "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/>".write(to: folder.appendingPathComponent("brand.svg"), atomically: true, encoding: .utf8)
        func problems(_ replacements: [String: String]) throws -> [Diagnostic] {
            let file = folder.appendingPathComponent("forge.toml")
            try config(replacing: replacements).write(to: file, atomically: true, encoding: .utf8)
            do {
                _ = try ConfigLoader.load(file: file.path)
                return []
            } catch {
                return error.diagnostics
            }
        }
        let withoutAlt = try problems(["# logo": "\"brand.svg\""])
        #expect(withoutAlt.map(\.keyPath) == ["branding.logo"])
        #expect(withoutAlt.first?.message == "a logo needs a text alternative for customers who cannot see it")
        let withoutLogo = try problems(["# logo_alt": "{ en = \"Forge\", de = \"Forge\" }"])
        #expect(withoutLogo.map(\.keyPath) == ["branding.logo_alt"])
        let onlyEnglish = try problems(["# logo": "\"brand.svg\"", "# logo_alt": "{ en = \"Forge\" }"])
        #expect(onlyEnglish.map(\.message) == ["has no 'de' translation"])
        #expect(try problems(["# logo": "\"brand.svg\"", "# logo_alt": "{ en = \"Forge\", de = \"Forge\" }"]) == [])
    }

    @Test func aFolderGivenForAFileIsCalledAFolder() throws {
        let folder = try Repo.temporaryDirectory()
        for name in ["brand.svg", "COPYING"] {
            try FileManager.default.createDirectory(at: folder.appendingPathComponent(name), withIntermediateDirectories: false)
        }
        let file = folder.appendingPathComponent("forge.toml")
        try config(replacing: ["license": "\"MIT\"", "# logo": "\"brand.svg\"", "# logo_alt": "{ en = \"Forge\", de = \"Forge\" }"])
            .replacingOccurrences(of: "homepage =", with: "license_file = \"COPYING\"\nhomepage =")
            .write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try ConfigLoader.load(file: file.path)
            Issue.record("the folders should have been refused")
        } catch {
            #expect(error.diagnostics.map(\.keyPath) == ["package.license_file", "branding.logo"])
            #expect(error.diagnostics.allSatisfy { $0.message.hasSuffix("is a folder, not a file") }, "\(error)")
        }
    }

    @Test func licenseFileIsReadRelativeToTheConfig() throws {
        let folder = try Repo.temporaryDirectory()
        try "MIT License text".write(to: folder.appendingPathComponent("COPYING"), atomically: true, encoding: .utf8)
        let source = config(replacing: ["license": "\"MIT\""]).replacingOccurrences(of: "homepage =", with: "license_file = \"COPYING\"\nhomepage =")
        try source.write(to: folder.appendingPathComponent("forge.toml"), atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(file: folder.appendingPathComponent("forge.toml").path)
        #expect(config.package.licenseText == "MIT License text")
    }
}

@Suite("Examples")
struct ExampleTests {
    static let examples = ["Examples/noderails.toml", "Examples/acme-tickets.toml", "Examples/blockfest/forge.toml"]

    @Test(arguments: examples)
    func exampleLoadsAndRenders(_ path: String) throws {
        let config = try ConfigLoader.load(file: Repo.url(path).path)
        #expect(!(try Pipeline.render(config)).files.isEmpty)
    }

    @Test func brandedExamplesCanSitSideBySide() throws {
        let configs = try Self.examples.map { try ConfigLoader.load(file: Repo.url($0).path) }
        for keyPath in [\ForgeConfig.package.name, \.package.module, \.provider.identifier, \.provider.webhookPath] {
            let values = configs.map { $0[keyPath: keyPath] }
            #expect(Set(values).count == values.count, "\(values) must differ between variants")
        }
        #expect(configs[2].branding.logo?.fileName == "logo.svg")
    }
}
