namespace HmmEmu.Kernel.Locking;

/// <summary>
/// Marks the calling thread as running an interrupt handler until disposed: the context is atomic, sleeping is
/// reported, and locks taken here must be taken with interrupts disabled everywhere else.
/// </summary>
public readonly struct InterruptScope : IDisposable, IEquatable<InterruptScope>
{
    private readonly TaskContext? _task;

    internal InterruptScope(TaskContext task)
    {
        _task = task;
        task.IrqDepth++;
        task.AtomicDepth++;
    }

    /// <summary>Leaves interrupt context.</summary>
    public void Dispose()
    {
        if (_task is null)
            return;
        _task.AtomicDepth--;
        _task.IrqDepth--;
    }

    /// <inheritdoc />
    public bool Equals(InterruptScope other) => ReferenceEquals(_task, other._task);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is InterruptScope other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => _task?.GetHashCode() ?? 0;

    /// <summary>Compares two scopes.</summary>
    public static bool operator ==(InterruptScope left, InterruptScope right) => left.Equals(right);

    /// <summary>Compares two scopes.</summary>
    public static bool operator !=(InterruptScope left, InterruptScope right) => !left.Equals(right);
}
