import FoundationEssentials
import Synchronization

/// One slot per index for work spread over `DispatchQueue.concurrentPerform`: each iteration
/// fills its own slot, and the caller reads them back in index order, so results stay
/// deterministic however the iterations were scheduled.
final class ConcurrentSlots<Value>: @unchecked Sendable {
    private let lock = Mutex(())
    private var slots: [Value?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ index: Int, _ value: Value) {
        lock.withLock { _ in slots[index] = value }
    }

    var values: [Value?] { lock.withLock { _ in slots } }
}
