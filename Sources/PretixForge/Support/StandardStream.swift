import FoundationEssentials
import Glibc

/// Unbuffered writes to standard output and standard error, each call written whole before it
/// returns, as Foundation's FileHandle wrote them. FileHandle is not in FoundationEssentials, and any
/// reference to full Foundation links it, with ICU's data, into the static binary (Package.swift).
public enum StandardStream {
    case output, error

    public func write(_ text: String) {
        write(Data(text.utf8))
    }

    public func write(_ data: Data) {
        let descriptor = self == .output ? STDOUT_FILENO : STDERR_FILENO
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // a closed pipe or a full disk: nothing left to tell it to
                }
                offset += written
            }
        }
    }
}
