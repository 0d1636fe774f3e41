import Foundation

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

    /// Parses a document into the same value model; nil when it is not JSON.
    static func decode(_ data: Data) -> Value? {
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        return value(of: object)
    }

    private static func value(of object: Any) -> Value? {
        switch object {
        case is NSNull: return .null
        case let string as String: return .string(string)
        // Booleans arrive as numbers on some platforms; the manifest schema has none.
        case let number as NSNumber: return .int(number.intValue)
        case let array as [Any]:
            var items: [Value] = []
            for item in array {
                guard let converted = value(of: item) else { return nil }
                items.append(converted)
            }
            return .array(items)
        case let dictionary as [String: Any]:
            var members: [String: Value] = [:]
            for (key, item) in dictionary {
                guard let converted = value(of: item) else { return nil }
                members[key] = converted
            }
            return .object(members)
        default: return nil
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
