using System;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace HmmEmu.Analyzers.Flow;

/// <summary>Three-valued knowledge of a boolean fact.</summary>
internal enum Tri : byte
{
    /// <summary>Could be either on some path.</summary>
    Unknown,

    /// <summary>True on every path to here.</summary>
    True,

    /// <summary>False on every path to here.</summary>
    False,
}

/// <summary>A lock held at a program point: where it was taken and whether it is held on every path.</summary>
internal readonly struct HeldLock : IEquatable<HeldLock>
{
    public HeldLock(IOperation acquiredAt, bool definite)
    {
        AcquiredAt = acquiredAt;
        Definite = definite;
    }

    /// <summary>The operation that took it (the first in source order when paths disagree).</summary>
    public IOperation AcquiredAt { get; }

    /// <summary>Held on every path to here (must-hold); otherwise only on some (may-hold).</summary>
    public bool Definite { get; }

    public bool Equals(HeldLock other) => ReferenceEquals(AcquiredAt, other.AcquiredAt) && Definite == other.Definite;

    public override bool Equals(object? obj) => obj is HeldLock other && Equals(other);

    public override int GetHashCode() => AcquiredAt.GetHashCode() ^ (Definite ? 1 : 0);
}

/// <summary>
/// The abstract state at a program point of one method: the locks it may hold (and which it must hold), whether the
/// invalidation range is known blockable, whether <c>SetSeq</c> was called on every path, and whether an owner-skip
/// test (<c>range.Owner == token</c>) held on every path. Immutable; the dataflow joins states where paths meet.
/// </summary>
internal sealed class FlowState : IEquatable<FlowState>
{
    public static readonly FlowState Entry = new(
        ImmutableDictionary.Create<ISymbol, HeldLock>(SymbolEqualityComparer.Default), Tri.Unknown, setSeqCalled: false, ownerMatched: false);

    private FlowState(ImmutableDictionary<ISymbol, HeldLock> held, Tri blockable, bool setSeqCalled, bool ownerMatched)
    {
        Held = held;
        Blockable = blockable;
        SetSeqCalled = setSeqCalled;
        OwnerMatched = ownerMatched;
    }

    /// <summary>Locks that may be held, keyed by the lock's field, property, local or parameter symbol.</summary>
    public ImmutableDictionary<ISymbol, HeldLock> Held { get; }

    /// <summary>Whether the invalidation range is blockable here.</summary>
    public Tri Blockable { get; }

    /// <summary>Whether <c>SetSeq</c> was called on every path to here.</summary>
    public bool SetSeqCalled { get; }

    /// <summary>Whether an owner-skip test succeeded on every path to here.</summary>
    public bool OwnerMatched { get; }

    /// <summary>Whether <paramref name="key"/> is held on every path to here.</summary>
    public bool MustHold(ISymbol key) => Held.TryGetValue(key, out var h) && h.Definite;

    /// <summary>Whether some lock is held on every path to here.</summary>
    public bool MustHoldAny()
    {
        foreach (var kv in Held)
        {
            if (kv.Value.Definite)
                return true;
        }
        return false;
    }

    public FlowState Acquire(ISymbol key, IOperation at) =>
        With(Held.SetItem(key, new HeldLock(Held.TryGetValue(key, out var h) ? Earlier(h.AcquiredAt, at) : at, definite: true)));

    public FlowState Release(ISymbol key) => Held.ContainsKey(key) ? With(Held.Remove(key)) : this;

    public FlowState WithBlockable(Tri value) => value == Blockable ? this : new(Held, value, SetSeqCalled, OwnerMatched);

    public FlowState WithSetSeq() => SetSeqCalled ? this : new(Held, Blockable, true, OwnerMatched);

    public FlowState WithOwnerMatched() => OwnerMatched ? this : new(Held, Blockable, SetSeqCalled, true);

    /// <summary>The state where paths from <paramref name="a"/> and <paramref name="b"/> meet; null is "not reached".</summary>
    public static FlowState? Join(FlowState? a, FlowState? b)
    {
        if (a is null)
            return b;
        if (b is null || ReferenceEquals(a, b))
            return a;
        var held = a.Held;
        foreach (var kv in a.Held)
        {
            if (!b.Held.TryGetValue(kv.Key, out var other))
            {
                if (kv.Value.Definite)
                    held = held.SetItem(kv.Key, new HeldLock(kv.Value.AcquiredAt, definite: false));
            }
            else
            {
                var merged = new HeldLock(Earlier(kv.Value.AcquiredAt, other.AcquiredAt), kv.Value.Definite && other.Definite);
                if (!merged.Equals(kv.Value))
                    held = held.SetItem(kv.Key, merged);
            }
        }
        foreach (var kv in b.Held)
        {
            if (!a.Held.ContainsKey(kv.Key))
                held = held.SetItem(kv.Key, new HeldLock(kv.Value.AcquiredAt, definite: false));
        }
        var blockable = a.Blockable == b.Blockable ? a.Blockable : Tri.Unknown;
        return new FlowState(held, blockable, a.SetSeqCalled && b.SetSeqCalled, a.OwnerMatched && b.OwnerMatched);
    }

    public bool Equals(FlowState? other)
    {
        if (other is null)
            return false;
        if (ReferenceEquals(this, other))
            return true;
        if (Blockable != other.Blockable || SetSeqCalled != other.SetSeqCalled || OwnerMatched != other.OwnerMatched || Held.Count != other.Held.Count)
            return false;
        foreach (var kv in Held)
        {
            if (!other.Held.TryGetValue(kv.Key, out var h) || !h.Equals(kv.Value))
                return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as FlowState);

    public override int GetHashCode() => Held.Count ^ ((int)Blockable << 8) ^ (SetSeqCalled ? 1 << 12 : 0) ^ (OwnerMatched ? 1 << 13 : 0);

    private FlowState With(ImmutableDictionary<ISymbol, HeldLock> held) => new(held, Blockable, SetSeqCalled, OwnerMatched);

    private static IOperation Earlier(IOperation a, IOperation b)
    {
        if (ReferenceEquals(a, b))
            return a;
        int sa = a.Syntax.SpanStart, sb = b.Syntax.SpanStart;
        return sa <= sb ? a : b;
    }
}
