import FoundationEssentials
import Glibc

/// A colour from `[branding]`, in the forms the config accepts: `#rgb`, `#rgba`, `#rrggbb`,
/// `#rrggbbaa`, `rgb()`/`rgba()` and `hsl()`/`hsla()`. Channels are 0…1, as WCAG computes with them.
struct CSSColor: Equatable {
    var red: Double
    var green: Double
    var blue: Double
    var alpha: Double = 1

    static let white = CSSColor(red: 1, green: 1, blue: 1)

    init(red: Double, green: Double, blue: Double, alpha: Double = 1) {
        self.red = red
        self.green = green
        self.blue = blue
        self.alpha = alpha
    }

    /// nil for anything else; ConfigLoader has already refused other shapes with a message.
    init?(css text: String) {
        if text.hasPrefix("#") {
            self.init(hex: text.dropFirst())
        } else {
            self.init(functional: text)
        }
    }

    private init?(hex digits: Substring) {
        let expanded = digits.count <= 4 ? String(digits.flatMap { [$0, $0] }) : String(digits)
        guard let value = UInt64(expanded, radix: 16), expanded.count == 6 || expanded.count == 8 else { return nil }
        let opaque = expanded.count == 6 ? value << 8 | 0xFF : value
        func channel(_ shift: UInt64) -> Double { Double((opaque >> shift) & 0xFF) / 255 }
        self.init(red: channel(24), green: channel(16), blue: channel(8), alpha: channel(0))
    }

    private init?(functional text: String) {
        guard let open = text.firstIndex(of: "("), text.hasSuffix(")") else { return nil }
        let function = text[..<open].lowercased()
        let arguments = text[text.index(after: open) ..< text.index(before: text.endIndex)]
            .split(whereSeparator: { $0 == "," || $0 == " " || $0 == "/" })
        let numbers: [(value: Double, percent: Bool)] = arguments.compactMap { argument in
            let percent = argument.hasSuffix("%")
            return Double(percent ? argument.dropLast() : argument).map { ($0, percent) }
        }
        guard numbers.count == arguments.count, numbers.count == 3 || numbers.count == 4 else { return nil }
        let alpha = numbers.count == 4 ? Self.clamped(numbers[3].percent ? numbers[3].value / 100 : numbers[3].value) : 1
        if function.hasPrefix("rgb") {
            let channels = numbers.prefix(3).map { Self.clamped($0.percent ? $0.value / 100 : $0.value / 255) }
            self.init(red: channels[0], green: channels[1], blue: channels[2], alpha: alpha)
        } else {
            self = Self.fromHSL(hue: numbers[0].value, saturation: Self.clamped(numbers[1].value / 100),
                                lightness: Self.clamped(numbers[2].value / 100), alpha: alpha)
        }
    }

    static func clamped(_ value: Double) -> Double { min(max(value, 0), 1) }

    static func fromHSL(hue: Double, saturation: Double, lightness: Double, alpha: Double = 1) -> CSSColor {
        // CSS Color 4, "Converting HSL to RGB".
        let turn = (hue.truncatingRemainder(dividingBy: 360) + 360).truncatingRemainder(dividingBy: 360) / 30
        func channel(_ offset: Double) -> Double {
            let k = (offset + turn).truncatingRemainder(dividingBy: 12)
            let a = saturation * min(lightness, 1 - lightness)
            return lightness - a * max(-1, min(k - 3, 9 - k, 1))
        }
        return CSSColor(red: channel(0), green: channel(8), blue: channel(4), alpha: alpha)
    }

    var hsl: (hue: Double, saturation: Double, lightness: Double) {
        let high = max(red, green, blue), low = min(red, green, blue)
        let lightness = (high + low) / 2
        guard high > low else { return (0, 0, lightness) }
        let delta = high - low
        let saturation = delta / (1 - abs(2 * lightness - 1))
        let hue: Double
        switch high {
        case red: hue = 60 * ((green - blue) / delta).truncatingRemainder(dividingBy: 6)
        case green: hue = 60 * ((blue - red) / delta + 2)
        default: hue = 60 * ((red - green) / delta + 4)
        }
        return (hue, saturation, lightness)
    }

    /// What the eye sees when this colour is painted over an opaque `background`.
    func blended(over background: CSSColor) -> CSSColor {
        func mix(_ top: Double, _ bottom: Double) -> Double { top * alpha + bottom * (1 - alpha) }
        return CSSColor(red: mix(red, background.red), green: mix(green, background.green), blue: mix(blue, background.blue))
    }

    /// WCAG 2.2 relative luminance of an opaque colour.
    var relativeLuminance: Double {
        func linear(_ channel: Double) -> Double {
            channel <= 0.04045 ? channel / 12.92 : pow((channel + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
    }

    /// WCAG 2.2 contrast ratio of two opaque colours, 1…21.
    func contrast(with other: CSSColor) -> Double {
        let (light, dark) = (max(relativeLuminance, other.relativeLuminance), min(relativeLuminance, other.relativeLuminance))
        return (light + 0.05) / (dark + 0.05)
    }

    var hexString: String {
        let digits = [red, green, blue].map { Int(($0 * 255).rounded()).hexDigits(width: 2) }
        return "#" + digits.joined()
    }
}

/// The foreground/background pairs the generated stylesheet paints from `[branding]`, each
/// held to WCAG 2.2 AA: 4.5:1 for text, 3:1 for borders, buttons and focus rings (non-text).
enum BrandContrast {
    struct Shortfall: Equatable {
        /// The key whose colour is suggested anew.
        var key: String
        var message: String
        var suggestion: String
    }

    static let textMinimum = 4.5
    static let nonTextMinimum = 3.0

    /// Every pair below its minimum; [] when the brand is legible.
    static func shortfalls(accent accentText: String, text textText: String) -> [Shortfall] {
        guard let accent = CSSColor(css: accentText), let text = CSSColor(css: textText) else { return [] }
        // pretix's pages are white; the accent is painted on them, the text on the accent.
        let accentOnPage = accent.blended(over: .white)
        let textOnAccent = text.blended(over: accentOnPage)
        var found: [Shortfall] = []
        let accentRatio = accentOnPage.contrast(with: .white)
        if accentRatio < nonTextMinimum {
            found.append(Shortfall(
                key: "branding.accent_color",
                message: "'\(accentText)' against pretix's white page has a contrast of \(format(accentRatio)):1; "
                    + "WCAG 2.2 AA needs \(format(nonTextMinimum)):1 for the heading rule, the banner border and the focus ring",
                suggestion: nearestPassing(accentOnPage, against: .white, minimum: nonTextMinimum).hexString))
        }
        let textRatio = textOnAccent.contrast(with: accentOnPage)
        if textRatio < textMinimum {
            found.append(Shortfall(
                key: "branding.text_color",
                message: "'\(textText)' on branding.accent_color '\(accentText)' has a contrast of \(format(textRatio)):1; "
                    + "WCAG 2.2 AA needs \(format(textMinimum)):1 for text",
                suggestion: nearestPassing(textOnAccent, against: accentOnPage, minimum: textMinimum).hexString))
        }
        return found
    }

    /// The colour of the same hue and saturation whose lightness is nearest to `color`'s and
    /// which reaches `minimum` against `background`. Black or white always does for the
    /// minimums used here, so the search ends.
    static func nearestPassing(_ color: CSSColor, against background: CSSColor, minimum: Double) -> CSSColor {
        let (hue, saturation, lightness) = color.hsl
        for step in 0 ... 1000 {
            for candidate in [lightness - Double(step) / 1000, lightness + Double(step) / 1000] where (0 ... 1).contains(candidate) {
                let shade = CSSColor.fromHSL(hue: hue, saturation: saturation, lightness: candidate)
                // Rounded to what the suggestion prints, so the printed colour passes too.
                if let printed = CSSColor(css: shade.hexString), printed.contrast(with: background) >= minimum {
                    return printed
                }
            }
        }
        return background.relativeLuminance > 0.18 ? CSSColor(red: 0, green: 0, blue: 0) : .white
    }

    /// Two decimals, rounded down, so a ratio shown as 4.50 really is at least 4.5.
    static func format(_ ratio: Double) -> String {
        let hundredths = Int((ratio * 100).rounded(.down))
        return "\(hundredths / 100)." + (hundredths % 100).description.leftPadded(to: 2)
    }
}
