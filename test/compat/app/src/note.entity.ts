import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

@Entity('compat_notes')
export class Note {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: 'text' })
  text!: string;
}
