namespace HmmEmu.Kernel.Locking;

/// <summary>One entry of a thread's held-lock stack.</summary>
/// <param name="Class">The lock's class.</param>
/// <param name="Instance">The lock object itself.</param>
/// <param name="Shared">Held for reading (rwsem read side).</param>
/// <param name="Trylock">Acquired with a trylock (adds no ordering dependency of its own).</param>
internal readonly record struct HeldLock(LockClass Class, object Instance, bool Shared, bool Trylock);
