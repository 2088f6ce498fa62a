"""Stores: one module (or small package) per engine, all behind ``protocol.Store``."""
