import FoundationEssentials

/// Python naming rules the generated plugin depends on.
public enum PythonNames {
    /// PEP 503 normalisation with `_` as PEP 625 and the wheel spec use it in file names.
    public static func normalizedDistributionName(_ name: String) -> String {
        var result = ""
        var lastWasSeparator = false
        for character in name.lowercased() {
            if character == "-" || character == "_" || character == "." {
                if !lastWasSeparator { result.append("_") }
                lastWasSeparator = true
            } else {
                result.append(character)
                lastWasSeparator = false
            }
        }
        return result
    }

    /// PEP 508 distribution name.
    static func isValidDistributionName(_ name: String) -> Bool {
        let inner: (UInt8) -> Bool = { ASCIIPattern.isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
        return ASCIIPattern.matches(name, first: ASCIIPattern.isAlphanumeric, rest: inner)
            && name.utf8.last.map(ASCIIPattern.isAlphanumeric) == true
    }

    /// Why `name` cannot be the plugin's module, or nil when it can.
    static func moduleNameProblem(_ name: String) -> String? {
        let underscore = UInt8(ascii: "_")
        if !ASCIIPattern.matches(name, first: { ASCIIPattern.isLetter($0) || $0 == underscore },
                                 rest: { ASCIIPattern.isAlphanumeric($0) || $0 == underscore }) {
            return "'\(name)' is not a Python identifier (letters, digits and _, not starting with a digit)"
        }
        if name != name.lowercased() {
            return "'\(name)' has upper-case letters; Django app labels and PEP 8 package names are lower case"
        }
        if ReservedNames.pythonKeywords.contains(name) {
            return "'\(name)' is a Python keyword"
        }
        if ReservedNames.stdlib.contains(name) {
            return "'\(name)' would shadow the Python standard-library module of that name"
        }
        if let app = ReservedNames.pretixAppLabels[name] {
            return "'\(name)' is the app label of \(app), which pretix installs; Django refuses two apps with one label"
        }
        if let distribution = ReservedNames.pretixDependencies[name] {
            return "'\(name)' would shadow the module of \(distribution), which pretix depends on"
        }
        if ReservedNames.pretixEcosystem.contains(name) {
            return "'\(name)' would shadow a module that pretix or Django needs"
        }
        return nil
    }
}

/// PEP 440 versions: validation and the canonical spelling used in file names and metadata.
public enum PEP440 {
    /// The canonical form of `version`, or nil when it is not a PEP 440 version.
    /// Local versions (`+abc`) are refused: package indexes do not accept them.
    public static func canonical(_ version: String) -> String? {
        canonicalRelease(version) ?? canonicalFullForm(version)
    }

    /// Out of line: the regex's typed output is instantiated on entry to the function that
    /// holds it, which cost a plain release version more than its whole check.
    @inline(never)
    private static func canonicalFullForm(_ version: String) -> String? {
        let pattern = /v?(?:(?<epoch>[0-9]+)!)?(?<release>[0-9]+(?:\.[0-9]+)*)(?:[-_.]?(?<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?<pre_n>[0-9]+)?)?(?:-(?<post_n1>[0-9]+)|[-_.]?(?<post_l>post|rev|r)[-_.]?(?<post_n2>[0-9]+)?)?(?:[-_.]?(?<dev_l>dev)[-_.]?(?<dev_n>[0-9]+)?)?/
        let text = version.trimming(.whitespaces).lowercased()
        guard let match = text.wholeMatch(of: pattern) else { return nil }
        func number(_ digits: Substring?) -> String {
            guard let digits else { return "0" }
            let trimmed = digits.drop { $0 == "0" }
            return trimmed.isEmpty ? "0" : String(trimmed)
        }
        var result = ""
        if let epoch = match.output.epoch, number(epoch) != "0" { result += "\(number(epoch))!" }
        result += match.output.release.split(separator: ".").map { number($0) }.joined(separator: ".")
        if let preLabel = match.output.pre_l {
            let label: String
            switch preLabel {
            case "a", "alpha": label = "a"
            case "b", "beta": label = "b"
            default: label = "rc"
            }
            result += label + number(match.output.pre_n)
        }
        if let postNumber = match.output.post_n1 {
            result += ".post" + number(postNumber)
        } else if match.output.post_l != nil {
            result += ".post" + number(match.output.post_n2)
        }
        if match.output.dev_l != nil {
            result += ".dev" + number(match.output.dev_n)
        }
        return result
    }

    /// The common case, a plain release such as `1.0.0` or `2.01`, without building a regex:
    /// Swift compiles a regex literal on each use, and that dominated config loading.
    private static func canonicalRelease(_ version: String) -> String? {
        let parts = version.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(ASCIIPattern.isDigit) }) else { return nil }
        return parts.map { part in
            let significant = part.drop { $0 == UInt8(ascii: "0") }
            return significant.isEmpty ? "0" : String(decoding: significant, as: UTF8.self)
        }.joined(separator: ".")
    }
}
