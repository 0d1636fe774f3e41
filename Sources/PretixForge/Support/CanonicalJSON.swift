import FoundationEssentials

/// JSON with sorted keys, two-space indentation and one spelling of every value, so equal
/// content always gives equal bytes: the manifest is committed with the tree and compared byte
/// for byte, and Foundation's encoders differ in spacing between platforms.
enum CanonicalJSON {
    indirect enum Value: Equatable {
        case string(String)
        case int(Int)
        case null
        case array([Value])
        case object([String: Value])
    }

    /// The document followed by a newline, as an editor would save it.
    static func encode(_ value: Value) -> Data {
        var text = ""
        write(value, indent: "", into: &text)
        return Data((text + "\n").utf8)
    }

    private static func write(_ value: Value, indent: String, into text: inout String) {
        switch value {
        case .string(let string): text += quoted(string)
        case .int(let number): text += String(number)
        case .null: text += "null"
        case .array(let items):
            guard !items.isEmpty else { text += "[]"; return }
            text += "[\n"
            for (index, item) in items.enumerated() {
                text += indent + "  "
                write(item, indent: indent + "  ", into: &text)
                text += index == items.count - 1 ? "\n" : ",\n"
            }
            text += indent + "]"
        case .object(let members):
            guard !members.isEmpty else { text += "{}"; return }
            text += "{\n"
            let keys = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                text += indent + "  " + quoted(key) + ": "
                write(members[key]!, indent: indent + "  ", into: &text)
                text += index == keys.count - 1 ? "\n" : ",\n"
            }
            text += indent + "}"
        }
    }

    static func quoted(_ string: String) -> String {
        Escaping.json(string)
    }

    /// Parses a document into the same value model; nil when it is not JSON, or holds a number
    /// that is not a whole one within Int (the manifest schema has only those).
    static func decode(_ data: Data) -> Value? {
        try? JSONDecoder().decode(Value.self, from: data)
    }
}

extension CanonicalJSON.Value: Decodable {
    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let string = try? container.decode(String.self) {
            self = .string(string)
        } else if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else if let flag = try? container.decode(Bool.self) {
            // As Foundation's JSONSerialization read them on Linux: numbers.
            self = .int(flag ? 1 : 0)
        } else if let array = try? container.decode([Self].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: Self].self))
        }
    }
}

extension CanonicalJSON.Value {
    var string: String? { if case .string(let value) = self { return value } else { return nil } }
    var int: Int? { if case .int(let value) = self { return value } else { return nil } }
    var array: [CanonicalJSON.Value]? { if case .array(let value) = self { return value } else { return nil } }
    var object: [String: CanonicalJSON.Value]? { if case .object(let value) = self { return value } else { return nil } }
    var isNull: Bool { self == .null }
}
