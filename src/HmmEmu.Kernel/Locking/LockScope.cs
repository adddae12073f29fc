namespace HmmEmu.Kernel.Locking;

/// <summary>Releases a <see cref="KMutex"/>, <see cref="KSpinLock"/> or <see cref="KRwSemaphore"/> side when disposed.</summary>
public readonly struct LockScope : IDisposable, IEquatable<LockScope>
{
    private readonly object? _lock;
    private readonly byte _mode;

    internal LockScope(KMutex mutex) => (_lock, _mode) = (mutex, 0);

    internal LockScope(KSpinLock spin, bool irqSave) => (_lock, _mode) = (spin, irqSave ? (byte)2 : (byte)1);

    internal LockScope(KRwSemaphore sem, bool write) => (_lock, _mode) = (sem, write ? (byte)4 : (byte)3);

    /// <summary>Releases the lock that was acquired when this scope was created.</summary>
    public void Dispose()
    {
        switch (_lock)
        {
            case KMutex m:
                m.Unlock();
                break;
            case KSpinLock s when _mode == 2:
                s.UnlockIrqRestore();
                break;
            case KSpinLock s:
                s.Unlock();
                break;
            case KRwSemaphore r when _mode == 4:
                r.UpWrite();
                break;
            case KRwSemaphore r:
                r.UpRead();
                break;
        }
    }

    /// <inheritdoc />
    public bool Equals(LockScope other) => ReferenceEquals(_lock, other._lock) && _mode == other._mode;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is LockScope other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(_lock, _mode);

    /// <summary>Compares two scopes.</summary>
    public static bool operator ==(LockScope left, LockScope right) => left.Equals(right);

    /// <summary>Compares two scopes.</summary>
    public static bool operator !=(LockScope left, LockScope right) => !left.Equals(right);
}
