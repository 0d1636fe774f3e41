import Foundation
import Testing
@testable import PretixForge

@Suite("Render: templates to plugin tree")
struct RenderTests {
    static let goldenDirectory = "Tests/PretixForgeTests/Golden/default"

    /// The default tree must equal the checked-in golden copy, file by file.
    /// After an intended template change, refresh it with `make golden` and review the diff.
    @Test func defaultTreeMatchesGoldenCopy() throws {
        let config = try ConfigLoader.loadDefault()
        let tree = try Pipeline.render(config)
        let directory = Repo.url(Self.goldenDirectory).path
        let (manifest, _) = Pipeline.treeManifest(for: tree, config: config, templates: .embedded,
                                                  sources: TreeSources(configPath: nil, templatesPath: nil), directory: directory, previous: nil)
        var expected = tree.files
        expected[TreeManifest.fileName] = manifest.data
        let golden = try DriftCheck.readTree(directory)
        let report = DriftCheck.compare(expected: expected, actual: golden, subject: Self.goldenDirectory, repairCommand: "make golden")
        #expect(report.isClean, "\(report)")
    }

    @Test func treeHasEveryPartOfThePlugin() throws {
        let tree = try Pipeline.render(try ConfigLoader.loadDefault())
        let required = [
            "pyproject.toml", "setup.cfg", "README.md", "LICENSE", "MANIFEST.in", "pretixplugin.toml",
            "pretix_noderails/__init__.py", "pretix_noderails/apps.py", "pretix_noderails/signals.py",
            "pretix_noderails/payment.py", "pretix_noderails/client.py", "pretix_noderails/webhook.py",
            "pretix_noderails/views.py", "pretix_noderails/urls.py", "pretix_noderails/models.py",
            "pretix_noderails/migrations/0001_initial.py",
            "pretix_noderails/templates/pretix_noderails/checkout_payment_confirm.html",
            "pretix_noderails/locale/de/LC_MESSAGES/django.po", "pretix_noderails/locale/de/LC_MESSAGES/django.mo",
            "pretix_noderails/locale/de_Informal/LC_MESSAGES/django.mo",
            "tests/webhook-signatures.json", "tests/test_webhook.py",
        ]
        let missing = required.filter { tree.files[$0] == nil }
        #expect(missing.isEmpty, "missing: \(missing)")
        #expect(tree.files.keys.contains { $0.hasPrefix("pretix_noderails/static/pretix_noderails/") && $0.hasSuffix(".js") })
    }

    @Test func vectorsAreCopiedByteForByte() throws {
        let tree = try Pipeline.render(try ConfigLoader.loadDefault())
        #expect(tree.files["tests/webhook-signatures.json"] == (try Data(contentsOf: Repo.url("Tests/Vectors/webhook-signatures.json"))))
    }

    @Test func moduleNameReplacesPathSegments() throws {
        var config = try ConfigLoader.loadDefault()
        config.package.module = "pretix_acme_pay"
        let tree = try Pipeline.render(config)
        #expect(tree.files.keys.allSatisfy { !$0.contains("pretix_noderails") })
        #expect(tree.files["pretix_acme_pay/webhook.py"] != nil)
    }

    @Test func bareFreeTextIsRefused() {
        let templates = TemplateSet(files: ["x.py": Data("name = <% provider.public_name %>\n".utf8)])
        #expect(throws: ForgeError.self) { try PluginRenderer(templates: templates).render(try ConfigLoader.loadDefault()) }
    }

    @Test func unknownVariablesAndTransformsAreRefused() throws {
        let templates = TemplateSet(files: ["a.py": Data("x = <% provider.identifer %>\ny = <% py(package.module) %>\n".utf8)])
        do {
            _ = try PluginRenderer(templates: templates).render(try ConfigLoader.loadDefault())
            Issue.record("rendering should fail")
        } catch {
            let text = error.description
            #expect(text.contains("Templates/a.py:1") && text.contains("did you mean provider.identifier"))
            #expect(text.contains("Templates/a.py:2") && text.contains("does not apply to 'package.module'"))
        }
    }

    @Test func djangoAndPythonBracesPassThrough() throws {
        let text = "{% load i18n %}{{ value }} {'a': {'b': 1}} <% provider.identifier %>\n"
        let templates = TemplateSet(files: ["t.html": Data(text.utf8)])
        let tree = try PluginRenderer(templates: templates).render(try ConfigLoader.loadDefault())
        #expect(String(decoding: tree.files["t.html"]!, as: UTF8.self) == "{% load i18n %}{{ value }} {'a': {'b': 1}} noderails\n")
    }

    /// Templates are parsed tag by tag: text around, between and after tags, at either end of a
    /// file without a final newline, comes out as it was.
    @Test func textAroundTagsIsKeptByteForByte() throws {
        let text = "<% provider.identifier %><% package.module %>\n  x = '<%' if a %> b\n\tend <% package.module %>"
        let templates = TemplateSet(files: ["t.py": Data(text.utf8)])
        do {
            _ = try PluginRenderer(templates: templates)
            Issue.record("a stray <% must be refused")
        } catch {
            #expect(error.description.contains("Templates/t.py:2"))
        }
        let clean = "<% provider.identifier %><% package.module %>\n  {{ x }} %> b\n\tend <% package.module %>"
        let tree = try PluginRenderer(templates: TemplateSet(files: ["t.py": Data(clean.utf8)])).render(try ConfigLoader.loadDefault())
        #expect(String(decoding: tree.files["t.py"]!, as: UTF8.self) == "noderailspretix_noderails\n  {{ x }} %> b\n\tend pretix_noderails")
    }

    @Test func anUnclosedTagNamesItsLine() {
        let templates = TemplateSet(files: ["u.py": Data("a = 1\nb = <% provider.identifier\n".utf8)])
        #expect { try PluginRenderer(templates: templates) } throws: { error in
            "\(error)".contains("Templates/u.py:2")
        }
    }

    @Test func escapersMakeHostileTextLiteral() {
        let hostile = "it's \"q\" \\ </script> {% x %} {{ y }} %s \u{202E}\n"
        #expect(Escaping.python(hostile) == #"'it\'s "q" \\ </script> {% x %} {{ y }} %s \u202e\n'"#)
        #expect(Escaping.javaScript("</script>") == #""\u003c/script\u003e""#)
        #expect(Escaping.html("{% x %}<b>") == "&#123;&#37; x &#37;&#125;&lt;b&gt;")
        #expect(Escaping.toml("a\"b\\c\n") == #""a\"b\\c\n""#)
        #expect(Escaping.po("a\"b\n") == #"a\"b\n"#)
    }

    @Test func gettextCatalogueErrorsNameTheLine() {
        let cases: [(po: String, message: String, line: Int)] = [
            ("msgid \"a\"\nmsgstr \"b\\q\"\n", "unknown escape \\q", 2),
            ("\n\"loose\"\n", "string without a keyword", 2),
            ("msgid \"a\"\nmsgstr[1] \"b\"\n", "plural forms out of order", 2),
            ("msgid \"a\"\nmsgstr[x] \"b\"\n", "unknown keyword 'msgstr[x]'", 2),
            ("msgid \"a\"\nmsgstr \"b\\\"\n", "string ends in a backslash", 2),
            ("msgid a\n", "expected a quoted string", 1),
            ("garbage\n", "unexpected line 'garbage'", 1),
        ]
        for (po, message, line) in cases {
            do {
                _ = try GettextCatalog.parse(po)
                Issue.record("parsed: \(po)")
            } catch {
                #expect(error.message == message && error.line == line, "\(po)")
            }
        }
    }

    @Test func gettextPluralsAndUTF8() throws {
        let po = "msgid \"\"\nmsgstr \"\"\n\"Plural-Forms: nplurals=2; plural=(n != 1);\\n\"\n\nmsgid \"ticket\"\nmsgid_plural \"tickets\"\nmsgstr[0] \"Ticket \u{20AC}\"\nmsgstr[1] \"Tickets\\t\"\n"
        let catalog = try GettextCatalog.parse(po)
        #expect(catalog.messages.count == 2)
        #expect(catalog.messages[1].idPlural == "tickets" && catalog.messages[1].translations == ["Ticket \u{20AC}", "Tickets\t"])
        #expect(catalog.messages[0].translations == ["Plural-Forms: nplurals=2; plural=(n != 1);\n"])
    }

    @Test func gettextCatalogueCompilesToMo() throws {
        let po = "msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\nmsgid \"Pay\"\nmsgstr \"Bezahlen\"\n\n#, fuzzy\nmsgid \"Skip\"\nmsgstr \"Weg\"\n\nmsgctxt \"verb\"\nmsgid \"Order\"\nmsgstr \"Bestellen\"\n"
        let mo = try GettextCatalog.parse(po).compiled()
        #expect(mo.prefix(4) == Data([0xde, 0x12, 0x04, 0x95]))
        // header, "Pay", "verb\u{4}Order"; the fuzzy entry is left out as msgfmt does.
        #expect(mo[8] == 3)
        let text = String(decoding: mo, as: UTF8.self)
        #expect(text.contains("verb\u{4}Order") && text.contains("Bezahlen") && !text.contains("Weg"))
    }
}

@Suite("Embedded resources")
struct EmbeddedResourceTests {
    /// Text files are compiled in as escaped string literals: each must give back exactly the
    /// bytes on disk (non-ASCII text, quotes, backslashes, tabs and CRs included).
    @Test func everyEmbeddedFileHoldsTheBytesOnDisk() throws {
        let roots = ["Templates": "Templates", "Licenses": "Licenses", "Demo/forge_demo": "Demo/forge_demo",
                     "Simulator/noderails_sim": "Simulator/noderails_sim"]
        var compared = 0
        for (logical, relative) in roots {
            let files = EmbeddedFiles.folder(logical)
            #expect(!files.isEmpty, "\(logical) embeds nothing")
            for (path, data) in files {
                #expect(data == (try Data(contentsOf: Repo.url("\(relative)/\(path)"))), "\(logical)/\(path)")
                compared += 1
            }
        }
        #expect(EmbeddedFiles.data("Vectors/webhook-signatures.json") == (try Data(contentsOf: Repo.url("Tests/Vectors/webhook-signatures.json"))))
        #expect(EmbeddedFiles.data("compat.toml") == (try Data(contentsOf: Repo.url("compat.toml"))))
        let nonASCII = EmbeddedFiles.folder("Templates").values.contains { $0.contains { $0 >= 0x80 } }
        #expect(compared > 50 && nonASCII)
    }
}
