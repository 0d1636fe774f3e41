import Foundation
import Testing
@testable import PretixForge

@Suite("Config: every brand stays legible (WCAG 2.2 AA)")
struct ContrastTests {
    @Test func whiteOnWhiteIsRefusedNamingBothKeysTheRatiosAndAColourThatPasses() {
        let found = diagnostics(of: config(replacing: ["accent_color": "\"#ffffff\"", "text_color": "\"#fefefe\""]))
        #expect(found.map(\.keyPath) == ["branding.accent_color", "branding.text_color"])
        #expect(found.allSatisfy { $0.location.line != nil })
        #expect(found[0].message == "'#ffffff' against pretix's white page has a contrast of 1.00:1; WCAG 2.2 AA needs 3.00:1 for the heading rule, the banner border and the focus ring")
        #expect(found[0].fix == "use accent_color = \"#949494\" (the nearest lightness that passes), or choose another pair")
        #expect(found[1].message == "'#fefefe' on branding.accent_color '#ffffff' has a contrast of 1.00:1; WCAG 2.2 AA needs 4.50:1 for text")
        #expect(found[1].fix == "use text_color = \"#767676\" (the nearest lightness that passes), or choose another pair")
    }

    @Test(arguments: [
        ("#ffffff", "#fefefe"), ("#ffeb3b", "#ffffff"), ("hsl(50, 100%, 60%)", "#ffffff"), ("#2f6fed", "#2f6fed"),
        ("rgba(47, 111, 237, 0.3)", "#ffffff"), ("#000000", "#111111"), ("#777777", "#7a7a7a"),
    ])
    func theSuggestedColoursPassWhenTakenUp(_ accent: String, _ text: String) {
        // Every pair falls short: one that passes has no suggestion to take up and proves nothing.
        #expect(!BrandContrast.shortfalls(accent: accent, text: text).isEmpty)
        var pair = (accent: accent, text: text)
        for shortfall in BrandContrast.shortfalls(accent: accent, text: text) where shortfall.key == "branding.accent_color" {
            pair.accent = shortfall.suggestion
        }
        for shortfall in BrandContrast.shortfalls(accent: pair.accent, text: pair.text) {
            #expect(shortfall.key == "branding.text_color")
            pair.text = shortfall.suggestion
        }
        #expect(BrandContrast.shortfalls(accent: pair.accent, text: pair.text) == [])
        #expect(diagnostics(of: config(replacing: ["accent_color": "\"\(pair.accent)\"", "text_color": "\"\(pair.text)\""])) == [])
    }

    @Test func alphaColoursAreBlendedOverWhatTheySitOn() {
        // Opaque, the stock blue carries white text (4.55:1); at 30 % over the white page it
        // is a pale blue that neither carries white text nor stands out as a border.
        #expect(BrandContrast.shortfalls(accent: "rgba(47, 111, 237, 1)", text: "#ffffff") == [])
        #expect(BrandContrast.shortfalls(accent: "rgba(47, 111, 237, 0.3)", text: "#ffffff").map(\.key) == ["branding.accent_color", "branding.text_color"])
        // Half-transparent white text over the blue is a light blue on blue.
        #expect(BrandContrast.shortfalls(accent: "#2f6fed", text: "#ffffff80").map(\.key) == ["branding.text_color"])
        #expect(BrandContrast.shortfalls(accent: "#2f6fed", text: "hsla(0, 0%, 100%, 50%)").map(\.key) == ["branding.text_color"])
    }

    @Test func everyAcceptedFormReadsAsTheSameColour() {
        #expect(CSSColor(css: "rgb(47, 111, 237)") == CSSColor(css: "#2f6fed"))
        #expect(CSSColor(css: "rgb(100%, 0%, 0%)") == CSSColor(css: "#f00"))
        #expect(CSSColor(css: "hsl(0, 100%, 50%)") == CSSColor(css: "#ff0000"))
        #expect(CSSColor(css: "hsl(120 100% 25% / 50%)")?.hexString == "#008000")
        #expect(CSSColor(css: "hsl(120 100% 25% / 50%)")?.alpha == 0.5)
        #expect(CSSColor(css: "#0f08")?.alpha == CSSColor(css: "#00ff0088")?.alpha)
        #expect(CSSColor(css: "hsl(-120, 100%, 50%)") == CSSColor(css: "#0000ff"))
    }

    @Test func ratiosMatchWcagsOwnFigures() throws {
        let white = CSSColor.white, black = CSSColor(red: 0, green: 0, blue: 0)
        #expect(abs(white.contrast(with: black) - 21) < 1e-9)
        // #767676 is the lightest grey that reaches 4.5:1 on white; #777777 is not.
        #expect(try #require(CSSColor(css: "#767676")).contrast(with: white) >= 4.5)
        #expect(try #require(CSSColor(css: "#777777")).contrast(with: white) < 4.5)
        #expect(BrandContrast.format(4.4999) == "4.49")
    }

    @Test(arguments: ExampleTests.examples)
    func shippedConfigsPass(_ path: String) throws {
        let config = try ConfigLoader.load(file: Repo.url(path).path)
        #expect(BrandContrast.shortfalls(accent: config.branding.accentColor, text: config.branding.textColor) == [])
    }
}
