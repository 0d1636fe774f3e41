/// A short unified diff of two texts, for drift reports. Longest-common-subsequence based;
/// very long files are summarised rather than diffed.
enum LineDiff {
    static let maximumLines = 4000
    static let maximumOutputLines = 40

    static func unified(old: String, new: String, oldName: String, newName: String, context: Int = 3) -> String {
        let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard a.count <= maximumLines, b.count <= maximumLines else {
            return "--- \(oldName)\n+++ \(newName)\n(\(a.count) → \(b.count) lines; too long to diff here)\n"
        }
        // lcs[i][j] = length of the LCS of a[i...] and b[j...]
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        enum Op { case same(String), removed(String), added(String) }
        var ops: [Op] = []
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                ops.append(.same(a[i])); i += 1; j += 1
            } else if j < b.count, i == a.count || lcs[i][j + 1] >= lcs[i + 1][j] {
                ops.append(.added(b[j])); j += 1
            } else {
                ops.append(.removed(a[i])); i += 1
            }
        }
        let changed = ops.indices.filter { if case .same = ops[$0] { return false } else { return true } }
        var keep = Set<Int>()
        for index in changed { for k in max(0, index - context)...min(ops.count - 1, index + context) { keep.insert(k) } }
        var lines = ["--- \(oldName)", "+++ \(newName)"]
        var previous = -2
        for index in keep.sorted() {
            if index != previous + 1 { lines.append("@@") }
            switch ops[index] {
            case .same(let line): lines.append(" " + line)
            case .removed(let line): lines.append("-" + line)
            case .added(let line): lines.append("+" + line)
            }
            previous = index
        }
        if lines.count > maximumOutputLines {
            let hidden = lines.count - maximumOutputLines
            lines = Array(lines.prefix(maximumOutputLines)) + ["… \(hidden) more diff lines"]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
