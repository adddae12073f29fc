using System.Collections.Concurrent;
using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// The kernel API, annotation attributes and BCL members the rules recognise, resolved once per compilation (in a
/// compilation-start action) together with a per-compilation cache of <see cref="CalleeFacts"/>.
/// </summary>
internal sealed class KnownSymbols
{
    private const string AnnotationsNamespace = "HmmEmu.Annotations.";

    private readonly ConcurrentDictionary<IMethodSymbol, CalleeFacts> _facts = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentDictionary<INamedTypeSymbol, ImmutableArray<ISymbol>> _updateLocks = new(SymbolEqualityComparer.Default);

    private readonly INamedTypeSymbol? _mayBlock;
    private readonly INamedTypeSymbol? _blockingWait;
    private readonly INamedTypeSymbol? _mayInvalidate;
    private readonly INamedTypeSymbol? _mayReclaim;
    private readonly INamedTypeSymbol? _nonBlocking;
    private readonly INamedTypeSymbol? _acquiresLock;
    private readonly INamedTypeSymbol? _acquiresOnSuccess;
    private readonly INamedTypeSymbol? _releasesLock;
    private readonly INamedTypeSymbol? _invalidateCallback;
    private readonly INamedTypeSymbol? _notifierUpdateLock;
    private readonly INamedTypeSymbol? _deviceMapCommit;
    private readonly INamedTypeSymbol? _deviceZap;
    private readonly INamedTypeSymbol? _tlbFlush;
    private readonly INamedTypeSymbol? _dmaUnmap;

    private readonly INamedTypeSymbol? _monitor;
    private readonly INamedTypeSymbol? _thread;
    private readonly INamedTypeSymbol? _task;
    private readonly INamedTypeSymbol? _taskOfT;
    private readonly INamedTypeSymbol? _valueTaskOfT;
    private readonly INamedTypeSymbol? _taskAwaiter;
    private readonly INamedTypeSymbol? _taskAwaiterOfT;
    private readonly INamedTypeSymbol? _waitHandle;
    private readonly INamedTypeSymbol? _semaphoreSlim;
    private readonly INamedTypeSymbol? _manualResetEventSlim;
    private readonly INamedTypeSymbol? _countdownEvent;
    private readonly INamedTypeSymbol? _threadingLock;
    private readonly INamedTypeSymbol? _readerWriterLockSlim;
    private readonly INamedTypeSymbol? _simScheduler;
    private readonly INamedTypeSymbol? _simWaitQueue;

    private KnownSymbols(Compilation compilation)
    {
        INamedTypeSymbol? T(string name) => compilation.GetTypeByMetadataName(name);

        NotifierOps = T("HmmEmu.Kernel.Notifiers.IMmuIntervalNotifierOps");
        NotifierRange = T("HmmEmu.Kernel.Notifiers.MmuNotifierRange");
        IntervalNotifier = T("HmmEmu.Kernel.Notifiers.MmuIntervalNotifier");
        NotifierEvent = T("HmmEmu.Kernel.Notifiers.NotifierEvent");
        OpsInvalidate = FirstMethod(NotifierOps, "Invalidate");
        SetSeq = FirstMethod(IntervalNotifier, "SetSeq");
        ReadRetry = FirstMethod(IntervalNotifier, "ReadRetry");
        ReadBegin = FirstMethod(IntervalNotifier, "ReadBegin");
        HmmRange = T("HmmEmu.Kernel.Mirroring.HmmRange");
        RangeFault = FirstMethod(T("HmmEmu.Kernel.Mirroring.Hmm"), "RangeFault");
        HmmPfns = FirstProperty(HmmRange, "HmmPfns");
        RangeBlockable = FirstProperty(NotifierRange, "Blockable");
        RangeEvent = FirstProperty(NotifierRange, "Event");
        RangeOwner = FirstProperty(NotifierRange, "Owner");
        foreach (var m in NotifierEvent?.GetMembers("Unmap") ?? ImmutableArray<ISymbol>.Empty)
        {
            if (m is IFieldSymbol { HasConstantValue: true } f)
                UnmapEventValue = f.ConstantValue;
        }

        _mayBlock = T(AnnotationsNamespace + "MayBlockAttribute");
        _blockingWait = T(AnnotationsNamespace + "BlockingWaitAttribute");
        _mayInvalidate = T(AnnotationsNamespace + "MayInvalidateAttribute");
        _mayReclaim = T(AnnotationsNamespace + "MayReclaimAttribute");
        _nonBlocking = T(AnnotationsNamespace + "NonBlockingAttribute");
        _acquiresLock = T(AnnotationsNamespace + "AcquiresLockAttribute");
        _acquiresOnSuccess = T(AnnotationsNamespace + "AcquiresOnSuccessAttribute");
        _releasesLock = T(AnnotationsNamespace + "ReleasesLockAttribute");
        _invalidateCallback = T(AnnotationsNamespace + "InvalidateCallbackAttribute");
        _notifierUpdateLock = T(AnnotationsNamespace + "NotifierUpdateLockAttribute");
        _deviceMapCommit = T(AnnotationsNamespace + "DeviceMapCommitAttribute");
        _deviceZap = T(AnnotationsNamespace + "DeviceZapAttribute");
        _tlbFlush = T(AnnotationsNamespace + "TlbFlushAttribute");
        _dmaUnmap = T(AnnotationsNamespace + "DmaUnmapAttribute");

        _monitor = T("System.Threading.Monitor");
        _thread = T("System.Threading.Thread");
        _task = T("System.Threading.Tasks.Task");
        _taskOfT = T("System.Threading.Tasks.Task`1");
        _valueTaskOfT = T("System.Threading.Tasks.ValueTask`1");
        _taskAwaiter = T("System.Runtime.CompilerServices.TaskAwaiter");
        _taskAwaiterOfT = T("System.Runtime.CompilerServices.TaskAwaiter`1");
        _waitHandle = T("System.Threading.WaitHandle");
        _semaphoreSlim = T("System.Threading.SemaphoreSlim");
        _manualResetEventSlim = T("System.Threading.ManualResetEventSlim");
        _countdownEvent = T("System.Threading.CountdownEvent");
        _threadingLock = T("System.Threading.Lock");
        _readerWriterLockSlim = T("System.Threading.ReaderWriterLockSlim");
        _simScheduler = T("HmmEmu.Simulation.Scheduler");
        _simWaitQueue = T("HmmEmu.Simulation.SimWaitQueue");
    }

    /// <summary><c>IMmuIntervalNotifierOps</c>, if the kernel is referenced.</summary>
    public INamedTypeSymbol? NotifierOps { get; }

    /// <summary><c>IMmuIntervalNotifierOps.Invalidate</c>.</summary>
    public IMethodSymbol? OpsInvalidate { get; }

    /// <summary><c>MmuNotifierRange</c>.</summary>
    public INamedTypeSymbol? NotifierRange { get; }

    /// <summary><c>MmuIntervalNotifier</c>.</summary>
    public INamedTypeSymbol? IntervalNotifier { get; }

    /// <summary><c>NotifierEvent</c>.</summary>
    public INamedTypeSymbol? NotifierEvent { get; }

    /// <summary><c>MmuIntervalNotifier.SetSeq</c>.</summary>
    public IMethodSymbol? SetSeq { get; }

    /// <summary><c>MmuIntervalNotifier.ReadRetry</c>.</summary>
    public IMethodSymbol? ReadRetry { get; }

    /// <summary><c>MmuIntervalNotifier.ReadBegin</c>.</summary>
    public IMethodSymbol? ReadBegin { get; }

    /// <summary><c>HmmRange</c>.</summary>
    public INamedTypeSymbol? HmmRange { get; }

    /// <summary><c>Hmm.RangeFault</c>.</summary>
    public IMethodSymbol? RangeFault { get; }

    /// <summary><c>HmmRange.HmmPfns</c>: the fault result.</summary>
    public IPropertySymbol? HmmPfns { get; }

    /// <summary>Whether <paramref name="method"/> is marked <c>[DeviceMapCommit]</c>.</summary>
    public bool IsDeviceMapCommit(IMethodSymbol method) =>
        _deviceMapCommit is not null && HasAttribute((method.ReducedFrom ?? method).OriginalDefinition, _deviceMapCommit);

    /// <summary>Whether <paramref name="method"/> is <paramref name="known"/> (by original definition).</summary>
    public static bool IsMethod(IMethodSymbol method, IMethodSymbol? known) =>
        known is not null && SymbolEqualityComparer.Default.Equals((method.ReducedFrom ?? method).OriginalDefinition, known);

    /// <summary><c>MmuNotifierRange.Blockable</c>.</summary>
    public IPropertySymbol? RangeBlockable { get; }

    /// <summary><c>MmuNotifierRange.Event</c>.</summary>
    public IPropertySymbol? RangeEvent { get; }

    /// <summary><c>MmuNotifierRange.Owner</c>.</summary>
    public IPropertySymbol? RangeOwner { get; }

    /// <summary>The constant of <c>NotifierEvent.Unmap</c>: the only event the OOM reaper's non-blockable ranges carry.</summary>
    public object? UnmapEventValue { get; }

    /// <summary>Whether invalidate callbacks can exist in this compilation (kernel or annotations referenced).</summary>
    public bool HasCallbacks => OpsInvalidate is not null || _invalidateCallback is not null;

    /// <summary>Resolves the symbols of <paramref name="compilation"/>.</summary>
    public static KnownSymbols Create(Compilation compilation) => new(compilation);

    /// <summary>
    /// Whether <paramref name="method"/> is an invalidate callback: marked <c>[InvalidateCallback]</c> or implementing
    /// <c>IMmuIntervalNotifierOps.Invalidate</c>.
    /// </summary>
    public bool IsInvalidateCallback(IMethodSymbol method)
    {
        if (method.MethodKind is not (MethodKind.Ordinary or MethodKind.ExplicitInterfaceImplementation))
            return false;
        if (_invalidateCallback is not null && HasAttribute(method, _invalidateCallback))
            return true;
        if (OpsInvalidate is null || method.Name != OpsInvalidate.Name && method.MethodKind != MethodKind.ExplicitInterfaceImplementation)
            return false;
        foreach (var explicitImpl in method.ExplicitInterfaceImplementations)
        {
            if (SymbolEqualityComparer.Default.Equals(explicitImpl.OriginalDefinition, OpsInvalidate))
                return true;
        }
        var type = method.ContainingType;
        if (type is null || !ImplementsOps(type))
            return false;
        return SymbolEqualityComparer.Default.Equals(type.FindImplementationForInterfaceMember(OpsInvalidate), method);
    }

    /// <summary>
    /// The fields and properties of <paramref name="type"/> (and its base types) marked <c>[NotifierUpdateLock]</c>.
    /// </summary>
    public ImmutableArray<ISymbol> UpdateLocksOf(INamedTypeSymbol type)
    {
        if (_notifierUpdateLock is null)
            return ImmutableArray<ISymbol>.Empty;
        return _updateLocks.GetOrAdd(type, t =>
        {
            var b = ImmutableArray.CreateBuilder<ISymbol>();
            for (var cur = t; cur is not null; cur = cur.BaseType)
            {
                foreach (var m in cur.GetMembers())
                {
                    if (m is IFieldSymbol or IPropertySymbol && HasAttribute(m, _notifierUpdateLock))
                        b.Add(m);
                }
            }
            return b.ToImmutable();
        });
    }

    /// <summary>Whether <paramref name="member"/> is marked <c>[NotifierUpdateLock]</c>.</summary>
    public bool IsUpdateLock(ISymbol member) =>
        _notifierUpdateLock is not null && member is IFieldSymbol or IPropertySymbol && HasAttribute(member, _notifierUpdateLock);

    /// <summary>The facts of a called method, computed once per compilation.</summary>
    public CalleeFacts FactsOf(IMethodSymbol method)
    {
        method = method.ReducedFrom ?? method;
        method = method.OriginalDefinition;
        return _facts.GetOrAdd(method, Compute);
    }

    /// <summary>Whether reading <paramref name="property"/> blocks (<c>Task&lt;T&gt;.Result</c>).</summary>
    public bool IsBlockingProperty(IPropertySymbol property)
    {
        if (property.Name != "Result")
            return false;
        var type = property.ContainingType?.OriginalDefinition;
        return Is(type, _taskOfT) || Is(type, _valueTaskOfT);
    }

    private CalleeFacts Compute(IMethodSymbol method)
    {
        var blocking = BlockingKind.None;
        var effect = LockEffect.None;
        string? target = null;
        string? flagsParameter = null;
        long reclaimFlags = 0;
        bool reclaims = false;
        bool annotated = false;
        var device = DeviceEffect.None;
        foreach (var a in method.GetAttributes())
        {
            var cls = a.AttributeClass;
            if (cls is null || cls.ContainingNamespace?.ToDisplayString() != "HmmEmu.Annotations")
                continue;
            if (Is(cls, _mayBlock))
                blocking = Max(blocking, BlockingKind.MayBlock);
            else if (Is(cls, _blockingWait))
                blocking = Max(blocking, BlockingKind.BlockingWait);
            else if (Is(cls, _mayInvalidate))
                blocking = Max(blocking, BlockingKind.MayInvalidate);
            else if (Is(cls, _mayReclaim))
            {
                blocking = Max(blocking, BlockingKind.MayBlock);
                reclaims = true;
                foreach (var named in a.NamedArguments)
                {
                    if (named.Key == "FlagsParameter")
                        flagsParameter = named.Value.Value as string;
                    else if (named.Key == "ReclaimFlags" && named.Value.Value is long l)
                        reclaimFlags = l;
                }
            }
            else if (Is(cls, _nonBlocking))
                annotated = true;
            else if (Is(cls, _deviceZap))
                device |= DeviceEffect.Zap;
            else if (Is(cls, _tlbFlush))
                device |= DeviceEffect.Flush;
            else if (Is(cls, _dmaUnmap))
                device |= DeviceEffect.Unmap;
            else if (Is(cls, _acquiresLock))
                (effect, target) = (LockEffect.Acquire, FirstString(a));
            else if (Is(cls, _acquiresOnSuccess))
                (effect, target) = (LockEffect.AcquireOnSuccess, FirstString(a));
            else if (Is(cls, _releasesLock))
                (effect, target) = (LockEffect.Release, FirstString(a));
            else
                continue;
            annotated = true;
        }
        bool isSetSeq = SetSeq is not null && SymbolEqualityComparer.Default.Equals(method, SetSeq);
        if (annotated || isSetSeq)
            return new CalleeFacts(blocking, effect, target, isSetSeq, reclaims, flagsParameter, reclaimFlags, device);
        return Builtin(method);
    }

    // The BCL and simulation members that cannot carry our attributes.
    private CalleeFacts Builtin(IMethodSymbol method)
    {
        var type = method.ContainingType?.OriginalDefinition;
        if (type is null)
            return CalleeFacts.Nothing;
        string name = method.Name;
        int n = method.Parameters.Length;
        if (Is(type, _monitor))
        {
            return name switch
            {
                "Enter" => Facts(BlockingKind.MayBlock, LockEffect.Acquire, "obj"),
                "Exit" => Facts(BlockingKind.None, LockEffect.Release, "obj"),
                "TryEnter" when n == 1 => Facts(BlockingKind.None, LockEffect.AcquireOnSuccess, "obj"),
                "TryEnter" when n == 2 && method.Parameters[1].RefKind == RefKind.Ref => Facts(BlockingKind.None, LockEffect.Acquire, "obj"),
                "TryEnter" when method.ReturnType.SpecialType == SpecialType.System_Boolean => Facts(BlockingKind.MayBlock, LockEffect.AcquireOnSuccess, "obj"),
                "Wait" => Facts(BlockingKind.BlockingWait),
                _ => CalleeFacts.Nothing,
            };
        }
        if (Is(type, _threadingLock))
        {
            return name switch
            {
                "Enter" or "EnterScope" => Facts(BlockingKind.MayBlock, LockEffect.Acquire, null),
                "Exit" => Facts(BlockingKind.None, LockEffect.Release, null),
                "TryEnter" => Facts(n == 0 ? BlockingKind.None : BlockingKind.MayBlock, LockEffect.AcquireOnSuccess, null),
                _ => CalleeFacts.Nothing,
            };
        }
        if (Is(type, _readerWriterLockSlim))
        {
            if (name.StartsWith("Enter", System.StringComparison.Ordinal))
                return Facts(BlockingKind.MayBlock, LockEffect.Acquire, null);
            if (name.StartsWith("TryEnter", System.StringComparison.Ordinal))
                return Facts(BlockingKind.MayBlock, LockEffect.AcquireOnSuccess, null);
            if (name.StartsWith("Exit", System.StringComparison.Ordinal))
                return Facts(BlockingKind.None, LockEffect.Release, null);
            return CalleeFacts.Nothing;
        }
        bool wait = name switch
        {
            "Sleep" or "Join" => Is(type, _thread),
            "Wait" or "WaitAll" or "WaitAny" => Is(type, _task) || Is(type, _semaphoreSlim) || Is(type, _manualResetEventSlim) || Is(type, _countdownEvent),
            "WaitOne" => InheritsFrom(type, _waitHandle),
            "GetResult" => Is(type, _taskAwaiter) || Is(type, _taskAwaiterOfT),
            _ => false,
        } || (Is(type, _waitHandle) && name is "WaitAll" or "WaitAny" or "SignalAndWait")
          || (Is(type, _simScheduler) && name == "Sleep")
          || (Is(type, _simWaitQueue) && name == "WaitUntil");
        return wait ? Facts(BlockingKind.BlockingWait) : CalleeFacts.Nothing;
    }

    private static CalleeFacts Facts(BlockingKind blocking, LockEffect effect = LockEffect.None, string? target = null) =>
        new(blocking, effect, target, isSetSeq: false, reclaims: false, reclaimFlagsParameter: null, reclaimFlags: 0);

    private static string? FirstString(AttributeData a) =>
        a.ConstructorArguments.Length > 0 ? a.ConstructorArguments[0].Value as string : null;

    private static BlockingKind Max(BlockingKind a, BlockingKind b) => a > b ? a : b;

    private static bool Is(ITypeSymbol? a, INamedTypeSymbol? b) =>
        b is not null && SymbolEqualityComparer.Default.Equals(a, b);

    private static bool InheritsFrom(INamedTypeSymbol? type, INamedTypeSymbol? baseType)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            if (Is(t, baseType))
                return true;
        }
        return false;
    }

    private static bool HasAttribute(ISymbol symbol, INamedTypeSymbol attribute)
    {
        foreach (var a in symbol.GetAttributes())
        {
            if (SymbolEqualityComparer.Default.Equals(a.AttributeClass, attribute))
                return true;
        }
        return false;
    }

    private bool ImplementsOps(INamedTypeSymbol type)
    {
        foreach (var i in type.AllInterfaces)
        {
            if (SymbolEqualityComparer.Default.Equals(i, NotifierOps))
                return true;
        }
        return false;
    }

    private static IMethodSymbol? FirstMethod(INamedTypeSymbol? type, string name)
    {
        foreach (var m in type?.GetMembers(name) ?? ImmutableArray<ISymbol>.Empty)
        {
            if (m is IMethodSymbol method)
                return method;
        }
        return null;
    }

    private static IPropertySymbol? FirstProperty(INamedTypeSymbol? type, string name)
    {
        foreach (var m in type?.GetMembers(name) ?? ImmutableArray<ISymbol>.Empty)
        {
            if (m is IPropertySymbol p)
                return p;
        }
        return null;
    }

    /// <summary>The field or property named <paramref name="name"/> of <paramref name="type"/> or its base types.</summary>
    public static ISymbol? FindFieldOrProperty(ITypeSymbol? type, string name)
    {
        for (var t = type; t is not null; t = t.BaseType)
        {
            foreach (var m in t.GetMembers(name))
            {
                if (m is IFieldSymbol or IPropertySymbol)
                    return m;
            }
        }
        return null;
    }
}
