import FoundationEssentials
import Glibc

/// Plain POSIX writes, for the places that must control how a file is opened (never through a
/// link, never an existing file) rather than take Foundation's `Data.write`.
enum POSIXFile {
    /// Writes all of `data` to `descriptor`, retrying short and interrupted writes; false (with
    /// errno set) when the system refuses.
    static func writeAll(_ data: Data, to descriptor: Int32) -> Bool {
        data.withUnsafeBytes { buffer -> Bool in
            guard let base = buffer.baseAddress else { return true }
            var offset = 0
            while offset < buffer.count {
                let count = write(descriptor, base + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += count
            }
            return true
        }
    }
}
