using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace HmmEmu.Analyzers.Flow;

/// <summary>
/// The cross-method fact behind HMM005 and HMM006: which locks (fields and properties) invalidate callbacks of this
/// compilation take, and which calls were made while holding one of them. Collected by operation-block actions, matched
/// in the compilation-end action (vs-threading's VSTHRD010 pattern). Owned by a compilation-start closure, never by an
/// analyzer (RS1008).
/// </summary>
internal sealed class CallbackLocks
{
    private readonly ConcurrentDictionary<ISymbol, string> _taken = new(SymbolEqualityComparer.Default);
    private readonly ConcurrentQueue<Pending> _pending = new();

    /// <summary>Records that the invalidate callback <paramref name="callback"/> takes <paramref name="key"/>.</summary>
    public void TakenInCallback(ISymbol key, string callback)
    {
        if (key is IFieldSymbol or IPropertySymbol)
            _taken.TryAdd(key, callback);
    }

    /// <summary>Records a call made while holding <paramref name="key"/>, to report if a callback turns out to take it.</summary>
    public void CallWhileHolding(ISymbol key, Location location, string callee, string what) =>
        _pending.Enqueue(new Pending(key, location, callee, what));

    /// <summary>Reports every recorded call made under a lock some callback takes, with <paramref name="descriptor"/>.</summary>
    public void ReportAtEnd(CompilationAnalysisContext context, DiagnosticDescriptor descriptor)
    {
        foreach (var call in _pending)
        {
            if (_taken.TryGetValue(call.LockKey, out var callback))
                context.ReportDiagnostic(Diagnostic.Create(descriptor, call.Location, call.Callee, call.What, call.LockKey.Name, callback));
        }
    }

    private sealed class Pending
    {
        public Pending(ISymbol lockKey, Location location, string callee, string what)
        {
            LockKey = lockKey;
            Location = location;
            Callee = callee;
            What = what;
        }

        public ISymbol LockKey { get; }

        public Location Location { get; }

        public string Callee { get; }

        public string What { get; }
    }
}
