using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Collections;

/// <summary>
/// A sparse array indexed by a 48-bit key (the kernel's xarray, as drivers use it for device page tables): a
/// radix tree of 64-slot nodes, six levels deep. Storing may allocate nodes, so <see cref="Store"/> takes
/// allocation flags and is annotated as an allocation for the lock checker (xa_store with GFP_KERNEL under an
/// invalidate-callback lock is a bug the checker reports).
/// </summary>
/// <remarks>Not thread-safe: the caller serializes access with its own lock, as drivers do.</remarks>
/// <typeparam name="T">The stored value; <c>default</c> means "empty".</typeparam>
public sealed class XArray<T>
{
    private const int Bits = 6;
    private const int Fanout = 1 << Bits;
    private const int Levels = 8; // 48-bit keys

    /// <summary>The largest index that can be stored.</summary>
    public const ulong MaxIndex = (1UL << (Bits * Levels)) - 1;

    private readonly HostKernel _kernel;
    private readonly Node _root = new(Levels - 1);
    private long _count;

    /// <summary>Creates an empty array that reports its allocations to <paramref name="kernel"/>'s lock checker.</summary>
    public XArray(HostKernel kernel)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        _kernel = kernel;
    }

    /// <summary>Number of stored (non-default) entries.</summary>
    public long Count => _count;

    /// <summary>Returns the entry at <paramref name="index"/>, or default (xa_load).</summary>
    public T? Load(ulong index)
    {
        if (index > MaxIndex)
            return default;
        var n = _root;
        for (int level = Levels - 1; level > 0; level--)
        {
            n = n.Children?[Slot(index, level)];
            if (n is null)
                return default;
        }
        return n.Values is null ? default : n.Values[Slot(index, 0)];
    }

    /// <summary>
    /// Stores <paramref name="value"/> at <paramref name="index"/> (xa_store). Storing default erases. Allocating a
    /// node follows <paramref name="gfp"/>: with <see cref="Gfp.Kernel"/> it may sleep and reclaim.
    /// </summary>
    public Errno Store(ulong index, T value, Gfp gfp)
    {
        if (index > MaxIndex)
            throw new ArgumentOutOfRangeException(nameof(index), $"XArray index 0x{index:x} exceeds 0x{MaxIndex:x}.");
        if (IsEmpty(value))
        {
            Erase(index);
            return Errno.Ok;
        }
        _kernel.MightAlloc(gfp);
        var n = _root;
        for (int level = Levels - 1; level > 0; level--)
        {
            n.Children ??= new Node?[Fanout];
            int s = Slot(index, level);
            var child = n.Children[s];
            if (child is null)
            {
                child = new Node(level - 1);
                n.Children[s] = child;
                n.Used++;
            }
            n = child;
        }
        n.Values ??= new T[Fanout];
        int leaf = Slot(index, 0);
        if (IsEmpty(n.Values[leaf]))
        {
            n.Used++;
            _count++;
        }
        n.Values[leaf] = value;
        return Errno.Ok;
    }

    /// <summary>Removes and returns the entry at <paramref name="index"/> (xa_erase).</summary>
    public T? Erase(ulong index)
    {
        if (index > MaxIndex)
            return default;
        T? old = default;
        EraseRange(index, index, (_, v) => old = v);
        return old;
    }

    /// <summary>
    /// Removes every entry in [<paramref name="first"/>, <paramref name="last"/>], visiting only populated nodes,
    /// and frees emptied nodes. Calls <paramref name="onErase"/> for each removed entry, in index order.
    /// Returns how many were removed.
    /// </summary>
    public long EraseRange(ulong first, ulong last, Action<ulong, T>? onErase = null)
    {
        if (first > last || first > MaxIndex)
            return 0;
        last = Math.Min(last, MaxIndex);
        long before = _count;
        Walk(_root, 0, first, last, onErase, erase: true);
        return before - _count;
    }

    /// <summary>Calls <paramref name="visit"/> for every entry in [<paramref name="first"/>, <paramref name="last"/>], in index order.</summary>
    public void ForEach(ulong first, ulong last, Action<ulong, T> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        if (first > last || first > MaxIndex)
            return;
        Walk(_root, 0, first, Math.Min(last, MaxIndex), visit, erase: false);
    }

    // The one walk behind EraseRange and ForEach: visits populated slots of [first, last] in index order, and with
    // erase set also empties them and frees nodes left empty.
    private void Walk(Node n, ulong baseIndex, ulong first, ulong last, Action<ulong, T>? visit, bool erase)
    {
        int shift = n.Level * Bits;
        if (n.Level == 0)
        {
            if (n.Values is null)
                return;
            for (int s = SlotFrom(first, baseIndex, shift); s < Fanout; s++)
            {
                ulong idx = baseIndex + (ulong)s;
                if (idx > last)
                    break;
                var v = n.Values[s];
                if (IsEmpty(v))
                    continue;
                if (erase)
                {
                    n.Values[s] = default!;
                    n.Used--;
                    _count--;
                }
                visit?.Invoke(idx, v);
            }
            return;
        }
        if (n.Children is null)
            return;
        ulong span = 1UL << shift;
        for (int s = SlotFrom(first, baseIndex, shift); s < Fanout; s++)
        {
            ulong childBase = baseIndex + (ulong)s * span;
            if (childBase > last)
                break;
            var child = n.Children[s];
            if (child is null)
                continue;
            Walk(child, childBase, first, last, visit, erase);
            if (erase && child.Used == 0)
            {
                n.Children[s] = null;
                n.Used--;
            }
        }
    }

    private static int SlotFrom(ulong first, ulong baseIndex, int shift) =>
        first <= baseIndex ? 0 : (int)((first - baseIndex) >> shift);

    private static int Slot(ulong index, int level) => (int)((index >> (level * Bits)) & (Fanout - 1));

    private static bool IsEmpty(T? value) => EqualityComparer<T>.Default.Equals(value!, default!);

    private sealed class Node(int level)
    {
        public readonly int Level = level;
        public Node?[]? Children;
        public T[]? Values;
        public int Used;
    }
}
