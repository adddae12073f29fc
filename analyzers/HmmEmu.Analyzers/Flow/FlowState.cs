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
        ImmutableDictionary.Create<ISymbol, HeldLock>(SymbolEqualityComparer.Default), Tri.Unknown, setSeqCalled: false, ownerMatched: false,
        ImmutableHashSet.Create<ISymbol>(SymbolEqualityComparer.Default), zapPending: false, flushed: false, faulted: false);

    private FlowState(ImmutableDictionary<ISymbol, HeldLock> held, Tri blockable, bool setSeqCalled, bool ownerMatched, ImmutableHashSet<ISymbol> validated, bool zapPending, bool flushed, bool faulted)
    {
        Faulted = faulted;
        ZapPending = zapPending;
        Flushed = flushed;
        Held = held;
        Blockable = blockable;
        SetSeqCalled = setSeqCalled;
        OwnerMatched = ownerMatched;
        Validated = validated;
    }

    /// <summary>Locks that may be held, keyed by the lock's field, property, local or parameter symbol.</summary>
    public ImmutableDictionary<ISymbol, HeldLock> Held { get; }

    /// <summary>Whether the invalidation range is blockable here.</summary>
    public Tri Blockable { get; }

    /// <summary>Whether <c>SetSeq</c> was called on every path to here.</summary>
    public bool SetSeqCalled { get; }

    /// <summary>Whether an owner-skip test succeeded on every path to here.</summary>
    public bool OwnerMatched { get; }

    /// <summary>
    /// The locks under which <c>ReadRetry(seq)</c> answered false on every path to here and that are still held since: a
    /// fault result may be committed here (HMM002). Emptied by a new fault or <c>ReadBegin</c>; a lock leaves it when released.
    /// </summary>
    public ImmutableHashSet<ISymbol> Validated { get; }

    /// <summary>Whether <c>Hmm.RangeFault</c> ran on some path to here: only then is there a fault result to commit (HMM002).</summary>
    public bool Faulted { get; }

    /// <summary>The state after <c>Hmm.RangeFault</c>: a new fault result, not yet validated by <c>ReadRetry</c>.</summary>
    public FlowState WithFault() => Faulted && Validated.IsEmpty ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, Validated.Clear(), ZapPending, Flushed, true);

    /// <summary>Whether, on some path to here, device mappings were zapped and the device TLB not flushed since (HMM007).</summary>
    public bool ZapPending { get; }

    /// <summary>Whether the device TLB was flushed (and waited for) after the last zap on every path to here (HMM007).</summary>
    public bool Flushed { get; }

    /// <summary>The state after a <c>[DeviceZap]</c> call: the device may still use the zapped translations.</summary>
    public FlowState WithZap() => ZapPending && !Flushed ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, Validated, true, false, Faulted);

    /// <summary>The state after a <c>[TlbFlush]</c> call: the device no longer uses any zapped translation.</summary>
    public FlowState WithFlush() => !ZapPending && Flushed ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, Validated, false, true, Faulted);

    /// <summary>The state on the edge where the last zap cleared nothing: there is nothing to flush.</summary>
    public FlowState WithNothingZapped() => !ZapPending ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, Validated, false, Flushed, Faulted);

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

    public FlowState Release(ISymbol key) =>
        Held.ContainsKey(key) || Validated.Contains(key) ? new(Held.Remove(key), Blockable, SetSeqCalled, OwnerMatched, Validated.Remove(key), ZapPending, Flushed, Faulted) : this;

    public FlowState WithBlockable(Tri value) => value == Blockable ? this : new(Held, value, SetSeqCalled, OwnerMatched, Validated, ZapPending, Flushed, Faulted);

    public FlowState WithSetSeq() => SetSeqCalled ? this : new(Held, Blockable, true, OwnerMatched, Validated, ZapPending, Flushed, Faulted);

    public FlowState WithOwnerMatched() => OwnerMatched ? this : new(Held, Blockable, SetSeqCalled, true, Validated, ZapPending, Flushed, Faulted);

    /// <summary>The state after <c>ReadRetry</c> answered false: every lock held on every path now validates the snapshot.</summary>
    public FlowState WithRetryChecked()
    {
        var validated = Validated;
        foreach (var kv in Held)
        {
            if (kv.Value.Definite)
                validated = validated.Add(kv.Key);
        }
        return validated.SetEquals(Validated) ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, validated, ZapPending, Flushed, Faulted);
    }

    /// <summary>The state after a new snapshot (<c>ReadBegin</c>, <c>RangeFault</c>): nothing validates it yet.</summary>
    public FlowState WithSnapshotRestarted() => Validated.IsEmpty ? this : new(Held, Blockable, SetSeqCalled, OwnerMatched, Validated.Clear(), ZapPending, Flushed, Faulted);

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
        var validated = a.Validated.SetEquals(b.Validated) ? a.Validated : a.Validated.Intersect(b.Validated);
        return new FlowState(held, blockable, a.SetSeqCalled && b.SetSeqCalled, a.OwnerMatched && b.OwnerMatched, validated,
            a.ZapPending || b.ZapPending, a.Flushed && b.Flushed, a.Faulted || b.Faulted);
    }

    public bool Equals(FlowState? other)
    {
        if (other is null)
            return false;
        if (ReferenceEquals(this, other))
            return true;
        if (Blockable != other.Blockable || SetSeqCalled != other.SetSeqCalled || OwnerMatched != other.OwnerMatched || Held.Count != other.Held.Count
            || ZapPending != other.ZapPending || Flushed != other.Flushed || Faulted != other.Faulted
            || !Validated.SetEquals(other.Validated))
            return false;
        foreach (var kv in Held)
        {
            if (!other.Held.TryGetValue(kv.Key, out var h) || !h.Equals(kv.Value))
                return false;
        }
        return true;
    }

    public override bool Equals(object? obj) => Equals(obj as FlowState);

    public override int GetHashCode() => Held.Count ^ ((int)Blockable << 8) ^ (SetSeqCalled ? 1 << 12 : 0) ^ (OwnerMatched ? 1 << 13 : 0) ^ (Validated.Count << 16);

    private FlowState With(ImmutableDictionary<ISymbol, HeldLock> held) => new(held, Blockable, SetSeqCalled, OwnerMatched, Validated, ZapPending, Flushed, Faulted);

    private static IOperation Earlier(IOperation a, IOperation b)
    {
        if (ReferenceEquals(a, b))
            return a;
        int sa = a.Syntax.SpanStart, sb = b.Syntax.SpanStart;
        return sa <= sb ? a : b;
    }
}
