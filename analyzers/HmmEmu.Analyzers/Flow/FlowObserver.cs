using Microsoft.CodeAnalysis;

namespace HmmEmu.Analyzers.Flow;

/// <summary>A call (or other operation) the dataflow understands, as a rule sees it.</summary>
internal readonly struct FlowCall
{
    public FlowCall(IOperation operation, ISymbol? member, CalleeFacts facts, BlockingKind blocking, ISymbol? lockKey)
    {
        Operation = operation;
        Member = member;
        Facts = facts;
        Blocking = blocking;
        LockKey = lockKey;
    }

    /// <summary>The invocation, property read, await or object creation.</summary>
    public IOperation Operation { get; }

    /// <summary>The method or property called, if any.</summary>
    public ISymbol? Member { get; }

    /// <summary>What is known about the member.</summary>
    public CalleeFacts Facts { get; }

    /// <summary>How this particular call may block (after the allocation-flags test).</summary>
    public BlockingKind Blocking { get; }

    /// <summary>The lock the call acquires or releases, if any.</summary>
    public ISymbol? LockKey { get; }
}

/// <summary>
/// Receives the facts of the final (fixed-point) pass over a method's control-flow graph, each with the state that holds
/// just before it. Rules subclass this and report from the callbacks. Each operation is visited once.
/// </summary>
internal abstract class FlowObserver
{
    /// <summary>The analysis replaying into this observer (set before the first callback).</summary>
    public LockFlowAnalysis? Analysis { get; set; }

    /// <summary>A call the dataflow knows something about, with the state before it.</summary>
    public virtual void OnCall(in FlowCall call, FlowState before)
    {
    }

    /// <summary>Any operation, after its operands were evaluated, with the state before its own effect.</summary>
    public virtual void OnOperation(IOperation operation, FlowState before)
    {
    }

    /// <summary>A lock taken (by a call, or by a successful try-lock at a branch), with the state before it.</summary>
    public virtual void OnAcquire(ISymbol key, IOperation site, FlowState before)
    {
    }

    /// <summary>
    /// A path leaves the method normally. <paramref name="returnedValue"/> is the value of a <c>return</c> and
    /// <paramref name="syntax"/> its statement (both null for a void return or the end of the body);
    /// <paramref name="after"/> is the state after every enclosing <c>finally</c> ran.
    /// </summary>
    public virtual void OnReturn(IOperation? returnedValue, SyntaxNode? syntax, FlowState before, FlowState after)
    {
    }
}
