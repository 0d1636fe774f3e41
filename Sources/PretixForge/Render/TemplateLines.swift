/// A template's lines (split at "\n", each keeping its "\n") with how many tag openers and closers
/// each holds. Scanned as bytes: this runs over every line of every template at each start, where
/// `Substring.contains` took a third of a build.
struct TemplateLines {
    static let opener = Array(PluginRenderer.tagOpener.utf8)
    static let closer = Array(PluginRenderer.tagCloser.utf8)

    private let bytes: [UInt8]
    /// Byte offset where each line starts; line i ends where line i + 1 starts (or at the end).
    private let starts: [Int]
    private let openers: [Int]
    private let closers: [Int]

    init(_ text: String) {
        bytes = Array(text.utf8)
        var starts = [0]
        for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") { starts.append(offset + 1) }
        self.starts = starts
        var openers: [Int] = [], closers: [Int] = []
        for index in starts.indices {
            let line = bytes[starts[index]..<(index + 1 < starts.count ? starts[index + 1] : bytes.count)]
            openers.append(ASCIIPattern.occurrences(of: Self.opener, in: line))
            closers.append(ASCIIPattern.occurrences(of: Self.closer, in: line))
        }
        self.openers = openers
        self.closers = closers
    }

    var count: Int { starts.count }

    func isTagged(_ line: Int) -> Bool { openers[line] > 0 || closers[line] > 0 }

    /// Every tag opens and closes on one line.
    var tagsWithinLines: Bool { zip(openers, closers).allSatisfy { $0 == $1 } }

    /// Lines start..<end joined, with the "\n" that ends the last of them unless it is the text's last.
    func text(from start: Int, to end: Int) -> String {
        String(decoding: bytes[starts[start]..<(end < starts.count ? starts[end] : bytes.count)], as: UTF8.self)
    }

}
